#!/usr/bin/env bash
# One-node SLURM cluster on this machine, for CI and `make test-slurm`.
#
#   .ci/slurm-cluster.sh start    write /etc/slurm/slurm.conf, start munged, slurmctld and
#                                 slurmd, wait until the node is idle and `srun uname -n` runs
#   .ci/slurm-cluster.sh stop     stop the three daemons started by `start` (by pid file)
#   .ci/slurm-cluster.sh status   exit 0 when the cluster accepts jobs, 1 otherwise
#
# Needs root and Debian's slurm-wlm + munge packages. No systemd: the daemons are started
# directly, so this works in containers too. `start` is idempotent (running daemons are kept).
# Accounting is off (no slurmdbd): job status comes from squeue, so MinJobAge is kept long.
set -euo pipefail

readonly SLURM_CONF=/etc/slurm/slurm.conf
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN_DIR=/run/munge
readonly MUNGE_PID=$MUNGE_RUN_DIR/munged.pid
readonly SLURM_RUN_DIR=/run/slurm
readonly SLURMCTLD_PID=$SLURM_RUN_DIR/slurmctld.pid
readonly SLURMD_PID=$SLURM_RUN_DIR/slurmd.pid
readonly STATE_DIR=/var/spool/slurmctld
readonly SPOOL_DIR=/var/spool/slurmd
readonly LOG_DIR=/var/log/slurm
readonly START_TIMEOUT_S=${SLURM_START_TIMEOUT_S:-90}
# Memory kept back from slurmd's RealMemory for the OS and the daemons themselves.
readonly MEMORY_MARGIN_MB=512

die() {
    echo "slurm-cluster: error: $*" >&2
    exit 1
}

log() {
    echo "slurm-cluster: $*"
}

require_root_and_packages() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it writes /etc/slurm and starts daemons)"
    local tool
    for tool in munged slurmctld slurmd sinfo srun runuser; do
        command -v "$tool" >/dev/null \
            || die "'$tool' not found; install with: apt-get install slurm-wlm munge"
    done
}

pid_alive() {
    local pidfile=$1
    [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Short host name, as slurmd matches it against NodeName (no `hostname` package needed).
short_hostname() {
    local name
    name=$(uname -n)
    echo "${name%%.*}"
}

# The node as slurmd itself detects it (CPUs, sockets, cores, threads, memory), so it never
# drains for a mismatch; RealMemory lowered by a margin for the OS and the daemons.
node_definition() {
    local detected memory_mb
    detected=$(slurmd -C | head -n1)
    memory_mb=$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$detected")
    ((memory_mb > 2 * MEMORY_MARGIN_MB)) || die "only ${memory_mb} MB of memory"
    sed -E -e "s/RealMemory=[0-9]+/RealMemory=$((memory_mb - MEMORY_MARGIN_MB))/" \
        -e "s/^NodeName=[^ ]+/NodeName=$(short_hostname) NodeAddr=127.0.0.1/" <<<"$detected"
}

write_config() {
    local host
    host=$(short_hostname)
    mkdir -p /etc/slurm
    cat >"$SLURM_CONF" <<EOF
# Written by .ci/slurm-cluster.sh: a one-node test cluster, no accounting, no cgroups.
ClusterName=lth-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay visible to squeue for 10 min: the Snakemake SLURM executor reads
# job states from squeue when sacct has no database behind it.
MinJobAge=600
StateSaveLocation=${STATE_DIR}
SlurmdSpoolDir=${SPOOL_DIR}
SlurmctldPidFile=${SLURMCTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
$(node_definition) State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
}

prepare_directories() {
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN_DIR"
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    install -d -o slurm -g slurm -m 0755 "$SLURM_RUN_DIR" "$STATE_DIR" "$LOG_DIR"
    install -d -o root -g root -m 0755 "$SPOOL_DIR"
}

ensure_munge_key() {
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

start_munged() {
    pid_alive "$MUNGE_PID" && return
    runuser -u munge -- munged --pid-file="$MUNGE_PID"
    wait_for "munge credentials" bash -c 'munge -n | unmunge >/dev/null'
}

start_slurm_daemons() {
    # -c: start from an empty job state; stale jobs of an earlier run are not wanted.
    pid_alive "$SLURMCTLD_PID" || slurmctld -c
    wait_for "slurmctld to answer" bash -c 'scontrol ping | grep -q UP'
    pid_alive "$SLURMD_PID" || slurmd
    wait_for "node $(short_hostname) to be idle" node_idle
}

node_idle() {
    sinfo --noheader --nodes="$(short_hostname)" --format=%T 2>/dev/null | grep -qx idle
}

# wait_for DESCRIPTION COMMAND...: retry COMMAND every second until START_TIMEOUT_S.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            show_logs
            die "timed out after ${START_TIMEOUT_S}s waiting for $what (logs above)"
        fi
        sleep 1
    done
}

show_logs() {
    local file
    for file in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [[ -f $file ]] && { echo "--- tail $file" >&2; tail -n 20 "$file" >&2; }
    done
    sinfo --long --Node >&2 2>/dev/null || true
}

run_probe_job() {
    local output
    output=$(timeout "$START_TIMEOUT_S" srun --nodes=1 --ntasks=1 --time=1 uname -n 2>&1) \
        || { show_logs; die "probe job 'srun uname -n' failed: $output"; }
    [[ ${output%%.*} == "$(short_hostname)" ]] \
        || die "probe job printed '$output', expected the host name"
}

cluster_ready() {
    pid_alive "$MUNGE_PID" && pid_alive "$SLURMCTLD_PID" && pid_alive "$SLURMD_PID" \
        && scontrol ping 2>/dev/null | grep -q UP && node_idle_or_busy
}

node_idle_or_busy() {
    sinfo --noheader --nodes="$(short_hostname)" --format=%T 2>/dev/null \
        | grep -qE '^(idle|mixed|allocated|completing)$'
}

start() {
    require_root_and_packages
    local started=$SECONDS
    if cluster_ready; then
        log "already running"
        return
    fi
    # Config is rewritten only while slurmctld is down, so a running cluster is untouched.
    pid_alive "$SLURMCTLD_PID" || write_config
    prepare_directories
    ensure_munge_key
    start_munged
    start_slurm_daemons
    run_probe_job
    log "ready in $((SECONDS - started))s: $(sinfo --noheader --format='%P %D %c CPUs %m MB %T')"
}

stop_daemon() {
    local name=$1 pidfile=$2
    pid_alive "$pidfile" || return 0
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$name (pid $pid) did not exit within 30s"
        sleep 0.2
    done
    log "stopped $name"
}

stop() {
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$SLURMCTLD_PID"
    stop_daemon munged "$MUNGE_PID"
}

status() {
    if cluster_ready; then
        sinfo
        return 0
    fi
    echo "slurm-cluster: not running (start with: sudo .ci/slurm-cluster.sh start)"
    return 1
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac

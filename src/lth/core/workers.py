"""A CPU cohort across worker processes: each member trained by the reference loop in a
forked child of the job, so that a job given W threads keeps W cores busy.

- **Why processes.** A step of a small network is many short torch calls; Python threads
  would serialise on the interpreter between them. A forked child inherits the job's
  loaded data, models and masks (copy-on-write): nothing is reloaded or sent to it.
- **Why one intra-op thread.** On a CPU the last bits of training depend on the number of
  intra-op threads (a reduction split over two threads adds in another order). Every worker
  trains with one, so a member's bytes are those of a job run with `--threads 1`, whichever
  worker trains it and whichever members share its job. One is also the only safe number:
  GNU OpenMP's thread pool does not survive fork, and a child that asks for two threads
  after its parent used the pool hangs.
- **Which worker.** Member i goes to worker i mod W, in cohort order: the assignment is fixed
  by the cohort, not by which worker is free first.
- **What comes back.** Each trained member's weights, result and after_backward hook (with
  what it accumulated), as one pickled message over a pipe from the job's own child (no
  file is ever unpickled); the parent loads them into its member, so that the job writes
  every file itself, as when it trains them one after another.
- **Failure.** A member whose training raises, or a worker that dies (a signal, the
  out-of-memory killer), fails the job with one line naming the member and the worker; the
  other workers are stopped. Nothing is written before every member of the call is back.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait

import torch

from lth.core.errors import LthError


def worker_count(members: int, device: torch.device, threads: int) -> int:
    """Worker processes for the unstacked training calls of a job of `members` networks and
    `threads` threads: one per member up to the threads on CPU; 1 (the job's own process) on
    CUDA or when the job has a single network or thread. Every call of a job with several
    gets them, one of a single network too (a job whose networks differ in schedule makes
    one call per schedule), so that every network of the job trains with one thread."""
    if device.type != "cpu":
        return 1
    return max(1, min(members, threads))


def train_in_workers(nets: Sequence, workers: int, train_one: Callable) -> None:
    """Train nets (lth.core.cohort.Net) in `workers` forked processes with train_one(net);
    each net ends as if train_one had run here: its model's state, .result, .after_backward,
    .process and .threads set."""
    context = multiprocessing.get_context("fork")
    started = []
    try:
        for w in range(workers):
            receive, send = context.Pipe(duplex=False)
            indices = range(w, len(nets), workers)
            process = context.Process(target=_work, name=f"lth-cohort-worker{w}", daemon=True,
                                      args=(nets, indices, train_one, send))
            process.start()
            send.close()  # the child holds the only write end: its exit ends the pipe
            started.append((process, receive, indices))
        _collect(nets, started)
    finally:
        for process, receive, _ in started:
            if process.is_alive():
                process.terminate()
            process.join()
            receive.close()


def _work(nets: Sequence, indices: range, train_one: Callable, send: Connection) -> None:
    """A worker: train its members one after another, sending each back when done; on an
    error, send its one line and stop."""
    torch.set_num_threads(1)
    for i in indices:
        net = nets[i]
        try:
            train_one(net)
            done = (net.model.state_dict(), dataclasses.replace(net.result, optimizer=None),
                    net.after_backward, net.process, net.threads)
            message = pickle.dumps(("done", i, done))
        except Exception as err:  # the parent fails the job with this line
            first = (str(err).strip().splitlines() or [""])[0]
            send.send_bytes(pickle.dumps(("failed", i, f"{type(err).__name__}: {first}")))
            sys.exit(1)
        send.send_bytes(message)
        sys.stdout.flush()


def _collect(nets: Sequence, started: list) -> None:
    """Receive every member from the workers (process, pipe, the indices of its nets) into
    `nets`; LthError on the first failure."""
    waiting = {receive: (process, indices) for process, receive, indices in started}
    pending = set(range(len(nets)))
    while waiting:
        for receive in wait(list(waiting)):
            process, indices = waiting[receive]
            try:
                status, i, body = pickle.loads(receive.recv_bytes())
            except EOFError:  # the worker exited: after its last member, or died
                del waiting[receive]
                process.join()
                lost = [i for i in indices if i in pending]
                if lost:
                    raise LthError(f"{nets[lost[0]].prefix}: worker process {process.pid} "
                                   f"died ({_exit_reason(process.exitcode)}) before it was "
                                   "trained") from None
                continue
            if status == "failed":
                raise LthError(f"{nets[i].prefix}: training failed in worker process "
                               f"{process.pid}: {body}")
            _adopt(nets[i], body)
            pending.discard(i)


def _adopt(net, done: tuple) -> None:
    """Load a member's trained state, result and hook, as a worker sent them, into net."""
    state, net.result, net.after_backward, net.process, net.threads = done
    net.model.load_state_dict(state)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"

#!/usr/bin/env bash
# Wheels for the lent GPU machine, which reaches no package registry: Snakemake and the
# executor plugin at pyproject.toml's pins, with every package they need that the machine's
# image lacks, built for its Python (3.12, x86-64 manylinux), into .whl/ (git ignores it;
# name it in the device call's `carry`). benchmarks/gpu_proof.sh installs them there.
#
#   bash benchmarks/device_wheels.sh            # here, where the registries are reachable
#
# The image's own packages (torch, numpy, pandas, jinja2, pyyaml, ... : the device library's
# KINDS.md lists them) are left out: the venv there sees them (--system-site-packages).
# A package published only as a source archive is built here into a wheel, which must then
# be pure Python (py3-none-any); anything else stops the script with its name.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=.whl
TARGET=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux1_x86_64)
IN_IMAGE=(attrs certifi charset-normalizer idna jinja2 markupsafe numpy packaging pandas psutil
          python-dateutil pyyaml requests six tabulate typing-extensions urllib3 wrapt)

pin() {  # pin NAME: NAME==VERSION as pyproject.toml pins it
    grep -o "\"$1==[^\"]*\"" pyproject.toml | tr -d '"'
}

uv=$(dirname "$PY")/uv
[ -x "$uv" ] || { echo "device_wheels: $uv not found (run make setup first)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pin snakemake >"$work/req.in"
pin snakemake-executor-plugin-slurm >>"$work/req.in"
"$uv" pip compile --quiet --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
    "$work/req.in" -o "$work/req.txt"

rm -rf "$OUT" && mkdir -p "$OUT"
grep -E '^[A-Za-z0-9]' "$work/req.txt" | while read -r req; do
    name=${req%%==*}
    [[ " ${IN_IMAGE[*]} " == *" $name "* ]] && continue
    if ! "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: "${TARGET[@]}" -d "$OUT" "$req" 2>/dev/null; then
        "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/built" "$req"
        built=$(ls "$work"/built/*.whl)
        case "$built" in
            *-py3-none-any.whl | *-py2.py3-none-any.whl) mv "$built" "$OUT/" ;;
            *) echo "device_wheels: $req has no wheel for Python 3.12 and is not pure Python" >&2
               exit 1 ;;
        esac
    fi
done
echo "$(ls "$OUT" | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT/"

#!/usr/bin/env bash
# The GPU proof on a lent GPU machine (no registry reachable there), a step per device call,
# each well inside the call's 10 minutes:
#
#   bash benchmarks/gpu_proof.sh tests        the test suite, CUDA tests included (without
#                                             TeX Live there, less the two files that build PDFs)
#   bash benchmarks/gpu_proof.sh throughput   benchmarks/cohort_throughput.py --device cuda
#   bash benchmarks/gpu_proof.sh preset [--set KEY=VALUE ...]
#                                             benchmarks/preset_timing.py on the LeNet preset
#
# Before: `bash benchmarks/device_wheels.sh` here, then name `.whl` in the call's `carry`.
# Each step makes a venv over the image's Python (its torch, numpy, pandas, ... seen through
# --system-site-packages), installs the carried wheels and lth into it, and writes its log
# under $OUT (else /tmp/gpu_proof). The benchmarks add their sections to the day's record,
# benchmarks/results/<date>-<gpu>.json (benchmarks/record.py), copied to $OUT too: put the
# copy back into the tree here before the next call, which then adds to it.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_proof}
VENV=/tmp/lth-venv
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --no-cache-dir .whl/*.whl
    "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --no-build-isolation -e .
fi
export PATH="$VENV/bin:$PATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

step=${1:-}
shift || true
case "$step" in
    tests)
        without_tex=()
        if ! command -v latexmk >/dev/null; then
            # no TeX Live in the image: the report tests and the tiny workflow (to the PDF)
            # cannot run; `preset` runs the real workflow on the GPU, to the HTML report
            echo "gpu_proof: no latexmk here: leaving out tests/test_report.py and test_workflow.py"
            without_tex=(--ignore tests/test_report.py --ignore tests/test_workflow.py)
        fi
        python -m pytest -q -p no:cacheprovider -rs "${without_tex[@]}" "$@" 2>&1 \
            | tee "$OUT/pytest.log" ;;
    throughput)
        python benchmarks/cohort_throughput.py --device cuda --record "$@" 2>&1 \
            | tee "$OUT/throughput.log" ;;
    preset)
        python benchmarks/preset_timing.py workflow/presets/lth_lenet_mnist.yaml \
            --workdir /tmp/preset_timing --record "$@" 2>&1 | tee "$OUT/preset.log" ;;
    *)
        echo "usage: bash benchmarks/gpu_proof.sh tests|throughput|preset [args]" >&2
        exit 2 ;;
esac
if [ "$step" != tests ]; then
    cp "$(ls -t benchmarks/results/*.json | head -1)" "$OUT/"
fi

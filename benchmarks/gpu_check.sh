#!/usr/bin/env bash
# One command on a machine with a CUDA GPU (under 10 minutes):
#   1. the tests marked `cuda` (tests/test_cuda.py: forward_at on CUDA, the three
#      estimators end to end, pickling on the GPU and loading on a CPU-only process,
#      checkpoint resume), which are skipped on machines without a GPU;
#   2. benchmarks/bench_gpu.py: an ML-1M fit and a MovieLens-10M-shaped fit on the GPU,
#      each with a CPU baseline timed on the same machine.
# Results: benchmarks/results/gpu_check_tests.txt (pytest report) and
# benchmarks/results/bench_gpu.{json,md}; also copied to $OUT when that is set.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#   SKKERNELNET_DATA=/data bash benchmarks/gpu_check.sh   # with ml-1m/ there
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
if [[ -z "${SKKERNELNET_DATA:-}" && -d ../shared/data ]]; then
    SKKERNELNET_DATA="$(cd ../shared/data && pwd)"
    export SKKERNELNET_DATA
fi
results=benchmarks/results
mkdir -p "$results"

if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: torch.cuda.is_available() is False on this machine; nothing to check" >&2
    exit 2
fi
python - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF

status=0
# 1. The GPU tests (a few minutes at most; the limit keeps the whole script under 10).
timeout 240 python -m pytest tests/test_cuda.py -m cuda -p no:cacheprovider -q -rs \
    2>&1 | tee "$results/gpu_check_tests.txt" || status=1
if grep -q "skipped" "$results/gpu_check_tests.txt" && ! grep -q "passed" "$results/gpu_check_tests.txt"; then
    echo "gpu_check.sh: every cuda test was skipped" >&2
    status=1
fi

# 2. Timings (the ML-1M fit runs to early stopping; the 10M-shape fit 10 iterations).
timeout 330 python benchmarks/bench_gpu.py --device cuda --scale-iterations 10 || status=1

if [[ -n "${OUT:-}" ]]; then
    cp "$results"/gpu_check_tests.txt "$results"/bench_gpu.json "$results"/bench_gpu.md \
        "$OUT"/ 2>/dev/null || true
fi
exit "$status"

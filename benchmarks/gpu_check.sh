#!/usr/bin/env bash
# The device check in one command: the `gpu` tests, then the GPU benchmark with its JSON figures.
# Runs with the machine's own python3 and the package staged from the checkout on PYTHONPATH
# (.ci/stage_package.sh: no install there): it needs torch, pyarrow,
# pandas, fsspec, scipy and pytest, and neither Ray nor DuckDB nor Optuna (the tests that need Ray
# are skipped where it is missing). About 8 minutes on one H200.
#     bash benchmarks/gpu_check.sh DATA_ROOT [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: gpu_check.sh DATA_ROOT [OUT_DIR] (DATA_ROOT holds thyroid/, arrhythmia/, kddcup99/)}"
out="${2:-gpu-check}"
mkdir -p "$out"
repo="$PWD"
data="$(cd "$data" && pwd)" out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
bash .ci/stage_package.sh "$stage"
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 ISOSWEEP_DATA="$data"
# From the staged folder, so that `python3 -m` puts it (not the checkout's partial isosweep/) first.
cd "$stage"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# addopts cleared: the suite's default marker filter would deselect the gpu tests.
python3 -m pytest -q -p no:cacheprovider -c "$repo/pyproject.toml" --rootdir "$repo" -o addopts="" -m gpu \
    "$repo/tests/trainers/test_gpu.py" "$repo/tests/trainers/test_image.py" 2>&1 | tee "$out/gpu-tests.log"
tests=${PIPESTATUS[0]}
python3 "$repo/benchmarks/gpu.py" --data-root "$data" --skip-cpu --json "$out/gpu.json" 2>&1 | tee "$out/gpu-benchmark.log"
bench=${PIPESTATUS[0]}
echo "gpu tests exit $tests, benchmark exit $bench"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]

#!/usr/bin/env bash
# The paper's tables on one machine with the local executor (no Ray): the anomaly table at the paper
# budget and 20 seeds, then the toy ablation at the paper budget, each timed, into one store that
# comes back as a tarball (checkpoints left out). Runs with the machine's own python3 and the package
# staged from the checkout (.ci/stage_package.sh: no install), as on a GPU machine without Ray; on a
# CPU it is the same command, only slower. Read the store afterwards where DuckDB is installed:
#     isosweep report anomaly --store OUT/store; isosweep report toy --store OUT/store
#     bash benchmarks/paper_tables.sh DATA_ROOT [OUT_DIR] [STUDIES]
# STUDIES: which of anomaly,toy to run (default both), e.g. `toy` for the toy ablation alone.
# BUDGET (default paper) and PYTHON (default python3) from the environment: `BUDGET=smoke
# PYTHON=.venv/bin/python bash benchmarks/paper_tables.sh ...` tries the script in a minute.
set -uo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: paper_tables.sh DATA_ROOT [OUT_DIR] [STUDIES] (DATA_ROOT holds thyroid/, arrhythmia/, kddcup99/)}"
out="${2:-paper-tables}"
budget="${BUDGET:-paper}"
python="${PYTHON:-python3}"
python="$(realpath -s "$(command -v "$python")")"
studies="${3:-anomaly,toy}"
mkdir -p "$out"
data="$(cd "$data" && pwd)" out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
bash .ci/stage_package.sh "$stage"
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cd "$stage"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" | tee "$out/device.txt"
status=0
run() {  # run NAME ARGS...: one timed sweep, its log and seconds in OUT
    local name="$1"; shift
    local start; start=$(date +%s.%N)
    "$python" -m isosweep run "$@" --executor local --data-root "$data" --store "$out/store" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "$name: exit $rc in $("$python" -c "print(f'{$(date +%s.%N) - $start:.1f}')") s" | tee -a "$out/times.txt"
    [ "$rc" -eq 0 ] || status=1
}
case ",$studies," in *,anomaly,*) run anomaly-paper anomaly-paper --budget "$budget" --seeds 20 ;; esac
case ",$studies," in *,toy,*) run toy-paper toy --budget "$budget" ;; esac
tar -C "$out" --exclude=store/ray/*/local -czf "$out/store.tar.gz" store
ls -l "$out/store.tar.gz"
exit $status

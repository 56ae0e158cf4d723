#!/usr/bin/env bash
# Issue 2's GPU session in one command: the kernel tests on CUDA, then the kernel benchmarks.
#
# In a session lent a GPU: first, here, `bash bench/prepare_gpu_wheels.sh` (fills the ignored .whl/), then
# one call of the device tool:
#   run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=600)
# then copy the kernels-*.json files from the reply's files_at into bench/results/ and commit them.
#
# Stages, in order, each under `timeout` with the time left before a deadline (GPU_SESSION_BUDGET_S, default
# 530 s, plus at most 40 s of grace, inside the tool's 600 s per command), so one slow stage cannot starve the rest:
#   env              nvidia-smi, python/torch/triton versions, the carried wheels installed into /tmp/site
#   tests            python -m pytest tests/kernels --device cuda (compiled kernels; xdist when present)
#   bench_adagn      python -m bench.run bench/bench_adagn.py       (one JSON per suite; a suite's SIGTERM at
#   bench_upfirdn2d  python -m bench.run bench/bench_upfirdn2d.py    its limit ends it after the case in
#   bench_diffusion  python -m bench.run bench/bench_diffusion.py    progress, and its JSON holds the cases done)
# The model tests (tests/models) are not run: they do not take --device yet, and on CPU tensors without the
# interpreter they would only compare the reference with itself.
# `bash bench/gpu_session.sh bench_diffusion` (any list of stage names) runs only those stages, e.g. in a
# second call when the first ran out of time; env always runs.
#
# Files back in $OUT (the tool returns at most 8): session.log (all output), tests.log, tests.xml (JUnit),
# stages.txt (each stage's status and seconds), and the kernels-*.json of each suite.
set -uo pipefail
cd "$(dirname "$0")/.."

BUDGET_S=${GPU_SESSION_BUDGET_S:-530}
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
# This call's JSON only (bench/results/ travels with the tree and may hold earlier runs).
RESULTS=$(mktemp -d)
ALL_STAGES=(tests bench_adagn bench_upfirdn2d bench_diffusion)
if (($#)); then STAGES=("$@"); else STAGES=("${ALL_STAGES[@]}"); fi
# Upper bounds per stage (seconds); the deadline may give less.
declare -A CAP=([tests]=240 [bench_adagn]=180 [bench_upfirdn2d]=150 [bench_diffusion]=530)
# tests: TERM to the whole process group (pytest, xdist workers, tee), KILL 15 s later. bench: TERM to
# bench.run alone (--foreground), which finishes the case in progress and writes its JSON; KILL 40 s later.
declare -A TIMEOUT_OPTS=([tests]="-k 15" [bench_adagn]="--foreground -k 40" [bench_upfirdn2d]="--foreground -k 40"
    [bench_diffusion]="--foreground -k 40")

mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
TEE_PID=$!
export PYTHONUNBUFFERED=1
failed=0

run_stage() {
    # run_stage NAME COMMAND...: COMMAND under timeout for min(CAP[NAME], time left before the deadline).
    local name=$1
    shift
    local left=$((BUDGET_S - SECONDS))
    local cap=${CAP[$name]}
    local limit=$((cap < left ? cap : left))
    if ((limit < 20)); then
        echo "== $name: skipped, ${left}s left before the ${BUDGET_S}s deadline" | tee -a "$OUT/stages.txt"
        failed=1
        return
    fi
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    # shellcheck disable=SC2086  # the options are words
    timeout ${TIMEOUT_OPTS[$name]} "$limit" "$@"
    local code=$?
    local status=ok
    ((code == 124 || code == 137)) && status="timed out after ${limit}s"
    ((code != 0 && code != 124 && code != 137)) && status="failed (exit $code)"
    ((code != 0)) && failed=1
    echo "== $name: $status, $((SECONDS - start))s" | tee -a "$OUT/stages.txt"
}

collect() {
    cp "$RESULTS"/*.json "$OUT"/ 2>/dev/null
    echo "== total ${SECONDS}s; stages:"
    cat "$OUT/stages.txt" 2>/dev/null
    [[ -f $OUT/tests.log ]] && grep -E "^(FAILED|ERROR)|[0-9]+ (passed|failed)" "$OUT/tests.log" | tail -40
    ls -l "$OUT"
    # Let tee write the last lines into session.log before the tool collects $OUT.
    exec >&- 2>&-
    wait "$TEE_PID"
}
trap collect EXIT

echo "== env"
nvidia-smi || echo "nvidia-smi failed"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl ||
        echo "wheel install failed: pytorch-fid/nvtx missing (the kernel tests and benchmarks do not need them)"
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PY'
import platform, torch, triton
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}),",
      f"triton {triton.__version__}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB, sm_{p.major}{p.minor}")
else:
    print("torch sees no CUDA GPU")
for name in ("pytorch_fid", "nvtx", "xdist", "pytest_benchmark"):
    try:
        module = __import__(name)
        print(f"{name} {getattr(module, '__version__', '')} at {module.__file__}")
    except ImportError as error:
        print(f"{name}: {error}")
PY

XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8)

for stage in "${STAGES[@]}"; do
    case $stage in
    tests)
        # -n 8: most of the time is Triton compiling each kernel specialisation once, which parallelises.
        run_stage tests bash -c "set -o pipefail; $PY -m pytest -q tests/kernels --device cuda ${XDIST[*]} \
            -p no:cacheprovider -rfE --durations=15 --junitxml='$OUT/tests.xml' 2>&1 | tee '$OUT/tests.log'"
        ;;
    bench_adagn | bench_upfirdn2d | bench_diffusion)
        run_stage "$stage" "$PY" -m bench.run "bench/$stage.py" --results-dir "$RESULTS"
        ;;
    *)
        echo "unknown stage '$stage'; stages: ${ALL_STAGES[*]}"
        failed=1
        ;;
    esac
done
exit $failed

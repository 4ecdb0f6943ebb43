#!/usr/bin/env bash
# The one prepared GPU check (issue 14): a CUDA smoke of train + evaluate on synth-ir17, then `bench` (fp32 eager
# vs the fast path) at widths 160 / 256 / 512 / 768 with K = 957, and torch.compile at width 160; all JSON into
# OUT, plus OUT/gpu_benchmarks.md (date, command, GPU, numbers) to paste under BENCHMARKS.md.
#   tools/gpu_check.sh [OUT]                 on a machine with CUDA (target: >= 20 000 training spectra/s at 160)
#   DEVICE=cpu QUICK=1 COMPILE=0 tools/gpu_check.sh    a dry run on a CPU (tiny sizes; what the tests run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-gpu-check}}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
# A GPU machine's own torch has CUDA; the pinned venv is the CPU wheel.
if [ "$DEVICE" = cuda ] && python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  PY=python3; export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
else
  source tools/venv.sh; PY=python
fi
if [ "${QUICK:-0}" = 1 ]; then WIDTHS="8"; N=300; EPOCHS=1; STEPS=2; BATCH=16; K=17; SMOKE_WIDTH=8
else WIDTHS="160 256 512 768"; N=4000; EPOCHS=10; STEPS=50; BATCH=512; K=957; SMOKE_WIDTH=64; fi
set -x
$PY -m peakmixer data synth --kind synth-ir17 --n "$N" --seed 0 --out "$OUT/synth-ir17.npz"
$PY -m peakmixer train --config params/train/synth_ir17.yaml --set "data.path=$OUT/synth-ir17.npz" \
  --set "device=$DEVICE" --set "out_dir=$OUT/run" --set "optim.epochs=$EPOCHS" --set progress=false \
  --set "model.width=$SMOKE_WIDTH"
$PY -m peakmixer evaluate --checkpoint "$OUT/run/best.pt" --device "$DEVICE" --metrics "$OUT/evaluate.json" --json
for W in $WIDTHS; do
  $PY -m peakmixer bench --device "$DEVICE" --width "$W" --n-classes "$K" --batch "$BATCH" --steps "$STEPS" \
    --json > "$OUT/bench_w$W.json"
done
FIRST="${WIDTHS%% *}"
if [ "${COMPILE:-1}" = 1 ]; then  # COMPILE=0 skips it (inductor takes minutes on a CPU)
  $PY -m peakmixer bench --device "$DEVICE" --width "$FIRST" --n-classes "$K" --batch "$BATCH" --steps "$STEPS" \
    --compile --json > "$OUT/bench_w${FIRST}_compile.json"
fi
set +x
$PY -c "import sys; from pathlib import Path; from peakmixer.studies.bench_report import gpu_markdown; \
print(gpu_markdown(Path(sys.argv[1]), ' '.join(sys.argv[2:])))" "$OUT" "tools/gpu_check.sh $*" \
  > "$OUT/gpu_benchmarks.md"
cat "$OUT/gpu_benchmarks.md"

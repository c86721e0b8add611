#!/usr/bin/env bash
# The GPU checks (bf16 MFU, step time against PyTorch on CUDA) as one short script for a device lease (at most 10 minutes).
#
# Build here (`make build`), then run on the GPU machine from the repository root with bin/reel
# carried: run(command="bash bench/gpu-check.sh", carry=["bin/reel"], timeout_s=600).
# Writes doctor.txt, train.txt, test.txt and bench-*.txt under $OUT (default /tmp/gpu-check).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
PY=${PY:-$(command -v python3)}
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
# The JAX CUDA PJRT plugin loads CUDA from the nvidia-* wheels; the dynamic loader must see them.
for d in "$SITE"/nvidia/*/lib; do LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH
export REEL_PJRT_PLUGIN=${REEL_PJRT_PLUGIN:-$(ls "$SITE"/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | head -1)}
step() { echo "== $*" >&2; }

step doctor
timeout 60 bin/reel doctor 2>&1 | tee "$OUT/doctor.txt"

step "bf16 training on all GPUs (loss must fall; MFU against the data-sheet peak)"
rm -rf /tmp/gpu-run
timeout 120 bin/reel train counting-pretrain-tiny --out /tmp/gpu-run --set train.steps=60 \
  --set train.precision=bf16 --set train.devices=0 --set train.eval_every=0 --set eval.examples=64 \
  --set train.log_every=20 2>&1 | tee "$OUT/train.txt"

step "bench vit-b bf16"
timeout 120 bin/reel bench vit --size b --precision bf16 --steps 10 --tokens 196,784 --sweep-batch 16 \
  --python "$PY" 2>&1 | tee "$OUT/bench-vit-b-bf16.txt"
step "bench video-b bf16 (ViViT tower)"
timeout 120 bin/reel bench video --size b --precision bf16 --steps 10 --frames 8,32 --sweep-batch 8 \
  --python "$PY" 2>&1 | tee "$OUT/bench-video-b-bf16.txt"
step "bench trajvit2-b bf16"
timeout 90 bin/reel bench video --arch trajvit2 --size b --precision bf16 --steps 10 \
  --python "$PY" 2>&1 | tee "$OUT/bench-trajvit2-b-bf16.txt"
step "bench stts-b bf16"
timeout 90 bin/reel bench video --arch stts --size b --precision bf16 --steps 10 \
  --python "$PY" 2>&1 | tee "$OUT/bench-stts-b-bf16.txt"

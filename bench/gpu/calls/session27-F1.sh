#!/bin/sh
# Session 27 call F1: where the tree stands on issue 7's step targets, measured three times: `npx bench --no-baseline
# --iters 20` on artifacts compiled at this tree (Flux.2 [dev] 1024x1024 with 512 text tokens; Qwen-Image batch 2 (CFG)
# with 32 text tokens), three rounds in one call, each round's table and log kept. Artifacts: $D/art.tar.xz (/tmp/art/{flux,qwen}-new).
set -u
D=${D:-.gpu/F27} ROUNDS=${ROUNDS:-3}
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
tar -xJf $D/art.tar.xz -C /tmp
for r in $(seq 1 $ROUNDS); do
  rm -rf /tmp/bench && mkdir -p /tmp/bench
  timeout 170 sh .gpu/rt/run.sh bench --models qwen_image,flux2_dev --artifact qwen_image=/tmp/art/qwen-new --artifact flux2_dev=/tmp/art/flux-new --no-baseline --iters 20 --out /tmp/bench > $OUT/bench-$r.log 2>&1
  echo "round $r rc $? $(date -u +%T)"
  cp /tmp/bench/*.md $OUT/bench-$r.md 2>/dev/null; grep -E "^\| (qwen_image|flux2_dev) " /tmp/bench/*.md | head -4
done

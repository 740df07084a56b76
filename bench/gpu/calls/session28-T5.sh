#!/bin/sh
# Session 28 call T5 (issues 6, 7), after the review's mends:
#  1. the attention harness on `ATTN_CASES='^(flux2_(single|joint)_fp8pv(_whole)?|qwen_image_t(32|64)_fp8pv(_wholelast)?)$'
#     npx tsx test/gpu/attention.ts prepare .gpu/narrow28b` (Qwen-Image's 64-token module: a narrow last tile of 128 keys in two
#     regions across the K block boundary), one round, checked afterwards with `attention.ts check`;
#  2. replicas running at once: test/gpu/denoise-loop.ts --cfg (two input sets on two replicas, device loop against host loop,
#     bit for bit) on Flux.2 with last-wave pieces (.gpu/T28's flux-new), bundled from b0d522b's runtime (one module set shared
#     by the replicas: the pieces' module-scope slots shared) and from this tree's (each replica loads its own modules). Bundles:
#     esbuild with runtime/gpu/pack.ts's options (bundle, esm, node20, its require banner; external sharp, onnxruntime-node),
#     entry test/gpu/denoise-loop.ts of a worktree at b0d522b and of this tree, out .gpu/rt/denoise-loop-{old,new}.mjs.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
timeout 120 /tmp/ah .gpu/narrow28b $OUT > $OUT/log.txt 2>&1; echo "harness rc $?"
grep -E "^time .* attention " $OUT/log.txt
tar -xJf .gpu/T28/art.tar.xz -C /tmp
NODE=/tmp/dc-node-$(cat .gpu/rt/node.version)
[ -x $NODE ] || { xz -dc .gpu/rt/node.xz > $NODE && chmod +x $NODE; }
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for v in new old; do
  timeout 200 $NODE .gpu/rt/denoise-loop-$v.mjs /tmp/art/flux-new --cfg --steps 2 --iters 1 > $OUT/denoise-$v.txt 2>&1; echo "denoise-loop $v rc $?"
  tail -2 $OUT/denoise-$v.txt | cut -c1-400
done

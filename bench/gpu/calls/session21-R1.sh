#!/bin/sh
# Session 21 call R1: row-kernel inputs that change once a run of rows (Qwen-Image's per-batch modulation shift and
# scale, [2, 1, 3072] against 2 x 4096 rows) held in registers and read again when the run changes, instead of staged
# through the shared-memory ring with every row (compiler/codegen/render.ts runRows). Qwen-Image (CFG batch 2, 32-token
# module) at HEAD eafb2a2 (old) and with the change (new), .gpu/R1s21/art.tar.xz: session 15's G1 (outputs of new
# against old, steps alternating, three rounds), then both with --profile. D and VARIANTS name other Qwen-Image
# artifacts (call T1).
set -u
D=${D:-.gpu/R1s21} VARIANTS=${VARIANTS:-"old new"}
D=$D MODELS=qwen VARIANTS="$VARIANTS" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for v in $VARIANTS; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/qwen-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile qwen-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-qwen-$v.json
done

#!/bin/sh
# Session 19 calls V4, V5 (V5: FP8 P·V with its row sums by the P·V MMA, session 18's B17 patch, in the models). V4: the attention pack with V's items after every Q and K item (descriptor vLast, where
# AttentionQuantizeV reads the pack's Vt next), against HEAD's order (issue 7). The models, old (55ef030) and new
# artifacts in .gpu/V1/art.tar.xz: session 15's G1 script (outputs of new against old, steps alternating), then
# each variant once with --profile (every launch timed alone) into $OUT/profile-MODEL-VARIANT.json.
# D names another artifacts folder (session 20's R1 runs this with D=.gpu/R1).
set -u
D=${D:-.gpu/V1} MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for m in flux qwen; do for v in old new; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/$m-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile $m-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-$m-$v.json
done; done

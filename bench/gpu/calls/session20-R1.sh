#!/bin/sh
# Session 20 call R1: the gated residual add in the own GEMM's epilogue (passes/fuse-gemm-residual.ts), in the models
# (issue 7). Artifacts compiled here at HEAD before it (old: e0352d3) and with it (new), tarred as .gpu/R1/art.tar.xz
# (art/{flux,qwen}-{old,new}); the runtime of `npx tsx runtime/gpu/pack.ts` (.gpu/rt), carried. Session 15's G1 script:
# the new outputs against the old (the epilogue computes the graph's Mul and Add bit for bit, so rel. L2 0 is the
# expectation), then the step times alternating; then each variant once with --profile (every launch timed alone)
# into $OUT/profile-MODEL-VARIANT.json.
set -u
D=.gpu/R1 MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for m in flux qwen; do for v in old new; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/$m-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile $m-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-$m-$v.json
done; done

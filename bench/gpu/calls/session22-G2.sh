#!/bin/sh
# Session 22 call G2: the SwiGLU in the own GEMM's epilogue (QLinear glu, passes/fuse-gemm-glu.ts). 1. The GEMM
# harness (.gpu/G2/gemm: Flux.2's single-block fused projection 4608 x 55296 x 6144 and its image MLP in 4096 x 36864 x
# 6144, variants q192s4n (plain), q192s4nu (GLU over W's last two thirds), q192s4nv (GLU over all of W), prepared with
# GEMM_SHAPES='^flux (single fused in|img mlp in)$'), samples for `gemm-own.ts check`, sustained 2 s at the cap.
# 2. Flux.2 at HEAD 10d5b65 (old) and with the fusion (new), .gpu/G2/art.tar.xz: session 15's G1 (outputs of new against
# old, steps alternating, three rounds), then both with --profile.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
mkdir -p $OUT/samples
GEMM_SUSTAIN_S=2 timeout 200 /tmp/go .gpu/G2/gemm $OUT/samples > $OUT/gemm.txt 2>&1; echo "gemm rc $?"
grep -E "^\| |sustained" $OUT/gemm.txt | cut -c1-220
D=.gpu/G2 MODELS=flux VARIANTS="old new" ROUNDS=3 sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for v in old new; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/flux-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile flux-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-flux-$v.json
done

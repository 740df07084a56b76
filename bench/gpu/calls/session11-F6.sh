#!/bin/sh
# Session 11 call F6: the own FP8 GEMM and cuBLASLt against the tensor-core simulation on 'edge' operands (an
# eighth zeros of either sign, a quarter e4m3 subnormals, the rest normals of every exponent): the cases call
# F1's operands (exponents 2^-3..2^2) never had. Prepared with GEMM_SHAPES='^(flux img out|flux single out|
# qwen img mlp out \(b2\)|odd rows)$' GEMM_VARIANTS=q192s4n,q192s4h,f192s4o32,p192s4x8o32 npx tsx
# bench/gpu/gemm-own.ts prepare .gpu/F6/g; checked here with `gemm-own.ts check .gpu/F6/g OUT/g`.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
mkdir -p /tmp/s/g
GEMM_OPERANDS=edge timeout 280 /tmp/go .gpu/F6/g /tmp/s/g > $OUT/g.txt 2>&1; echo "exit $?"
tar -cf $OUT/g-samples.tar -C /tmp/s g
grep -E "^\||operands" $OUT/g.txt | cut -c1-220

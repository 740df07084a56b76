#!/bin/sh
# Session 26 call X1 (code: 3926a90 without its pieces loaded a wgmma ahead; reverted after): the own GEMM quantizing its bf16 X on load (gemm.ts xq: each consumer codes its rows to e4m3 in
# registers, A from registers, K blocks of 64) against the plain FP8 GEMM on the shapes whose X a row kernel quantizes
# today: Flux.2's single-block out projection (after Concat+Quantize) and Qwen-Image's MLP out (after GELU+Quantize).
# .gpu/X1/{flux,qwen} from `npx tsx bench/gpu/gemm-own.ts prepare` (GEMM_SHAPES / GEMM_VARIANTS in RESULTS.md);
# samples for `gemm-own.ts check`, sustained 2 s at the cap.
set -u
D=${D:-.gpu/X1}  # call X3: D=.gpu/X3
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in flux qwen; do
  mkdir -p $OUT/samples-$d
  GEMM_SUSTAIN_S=2 timeout 250 /tmp/go $D/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |sustained|^Y hash" $OUT/gemm-$d.txt | cut -c1-220
done
cd $OUT && tar cf samples.tar samples-* && rm -rf samples-*

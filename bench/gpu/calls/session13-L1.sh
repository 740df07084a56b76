#!/bin/sh
# Session 13 call L1: bench/gpu/row_ln_variants.cu (LayerNorm+Modulate+Quantize [4608, 6144] in hand-written variants
# against the kernel as generated at 8c2f04c), three rounds; then the SASS instruction count of each variant.
# (The call ran the file beside the preamble of 8c2f04c; the variants' own code does not depend on the later changes.)
set -x
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv
nvcc -arch=sm_90a -O3 -o /tmp/lnbench bench/gpu/row_ln_variants.cu -Xptxas -v
/tmp/lnbench
cuobjdump -sass /tmp/lnbench > /tmp/sass.txt
awk '/Function :/{f=$3} /^ +\/\*[0-9a-f]+\*\//{c[f]++} END{for(k in c) print c[k], k}' /tmp/sass.txt

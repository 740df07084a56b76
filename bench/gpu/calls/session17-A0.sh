#!/bin/sh
# Session 17 call A0: issue rates of the softmax's MUFU and conversion instructions (bench/gpu/xu_rates.cu), and
# the SASS of Flux.2's FP8 attention kernel (prepared as in A1, its kernels.cubin carried in .gpu/s17).
nvidia-smi --query-gpu=name,clocks.sm,power.limit --format=csv
nvcc -O3 -arch=sm_90a -o /tmp/xu bench/gpu/xu_rates.cu && /tmp/xu | tee $OUT/xu.txt
cuobjdump -sass /tmp/xu > $OUT/xu.sass; cuobjdump -sass .gpu/s17/kernels.cubin > $OUT/attn.sass

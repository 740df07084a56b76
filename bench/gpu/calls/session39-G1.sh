#!/bin/sh
# Session 39, call G1 (GPU host): two more ping-pong variants against the descriptors' choices (integer P·V 'max', FP8 P·V
# 'issue' on Flux.2): no hand-over in the loop after a staggered start (handOver 'none'), and Q·Kᵀ in two halves of the tile's
# keys, the first half's scores converted while the second half's MMAs run (qkHalves), alone and with 'none'; three rounds
# (.gpu/v/g: `ATTN_CASES='^(flux2_single_int8pv|qwen_image_t32_int8pv|tiny_qwen_image_mask_int8pv|flux2_single_fp8pv)(_hnone|_halves|_halves_hnone)?$'
# npx tsx test/gpu/attention.ts prepare .gpu/v/g`), with SASS opcode counts and where the exponentials sit.
set -u
DIRS="g:.gpu/v/g" ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
cuobjdump -sass .gpu/v/g/kernels.cubin > /tmp/s.txt && python3 bench/gpu/sass_mufu_waits.py /tmp/s.txt > "$OUT/mufu.txt"

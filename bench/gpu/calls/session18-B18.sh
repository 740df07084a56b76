#!/bin/sh
# Session 18 call B18: s8 Q·Kᵀ (bf16 P·V) in 128-key tiles with two P arrays against the int8 descriptor's 192-key kernel, on
# Flux.2's single and joint nodes and Qwen-Image's 32-token node (issue 6). Code: bench/gpu/calls/session18-bf16p2.patch.
# Cases: `ATTN_CASES='^(flux2_single_int8|flux2_single_int8_b128p2|flux2_joint_int8|flux2_joint_int8_b128p2|qwen_image_t32_int8|qwen_image_t32_int8_b128p2)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18l`. Session 17's A2, three rounds.
C=${C:-.gpu/s18l} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh; rm -f $OUT/sass.txt; cp $OUT/harness3.txt $OUT/log.txt

#!/bin/sh
# Session 18 call B1: P·V reading P from shared memory (pvOperand 'shared') against P in registers (issues 6, 7).
# The pvOperand code and cases are in bench/gpu/calls/session18-pvsmem.patch (`git apply` before preparing; not kept: slower).
# Cases: `ATTN_CASES='^(tiny_flux2_fp8|tiny_qwen_image_mask|tiny_flux2_fp8_pvsmem|tiny_qwen_image_mask_pvsmem|flux2_single|flux2_single_fp8|flux2_single_int8|flux2_single_fp8_pvsmem|flux2_single_fp8_pvsmem_f32|flux2_single_fp8_pvsmem_slack|flux2_single_pvsmem|flux2_single_int8_pvsmem|qwen_image_t32_fp8|qwen_image_t32_fp8_pvsmem)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18a`. Session 17's A2 (the harness ROUNDS times, then the SASS);
# `attention.ts check` on outputs.bin here.
C=${C:-.gpu/s18a} ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session17-A2.sh

#!/bin/sh
# Session 41, call A2: the hand-over pinned by the exponentials' factors read again after it (templates/attention.cu.njk
# pinFactors) against HEAD, and the pinned kernels with the unit-level timeline (session41-utrace.py) to see whether the
# marks still move ptxas's schedule. Folders: base41 / baseq41 at HEAD (baseq41: ATTN_CASES='^(qwen_image_t32_int8pv|qwen_image_t32_fp8pv)$'),
# pin41 with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv)$',
# pinut41 with '^(flux2_single_int8pv|flux2_single_fp8pv)$' after session41-utrace.py.
DIRS="base:.gpu/v/base41 baseq:.gpu/v/baseq41 pin:.gpu/v/pin41 pinut:.gpu/v/pinut41" ROUNDS=3 TIMEOUT_S=150 KEEP=pin SASS=1 sh bench/gpu/calls/attention-ab.sh
for d in pin41 pinut41; do cuobjdump -sass .gpu/v/$d/kernels.cubin > $OUT/sass-$d.txt 2>&1; done

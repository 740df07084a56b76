#!/bin/sh
# Session 41, call A3: the integer P·V with its own P·V awaited at the 'max' hand-over (in source), with and without the
# pinned factors (pinwait / wait), against HEAD (base41, baseq41). Folders pinwait / wait prepared with
# ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|qwen_image_t32_int8pv)$' (template variants: bench/RESULTS.md "Session 41").
DIRS="base:.gpu/v/base41 baseq:.gpu/v/baseq41 pinwait:.gpu/v/pinwait wait:.gpu/v/wait" ROUNDS=3 TIMEOUT_S=150 KEEP=pinwait sh bench/gpu/calls/attention-ab.sh
for d in pinwait wait; do cuobjdump -sass .gpu/v/$d/kernels.cubin > $OUT/sass-$d.txt 2>&1; done

#!/bin/sh
# Session 24 call M1: the attention pack's instruction diet and ROWS_UNIFORM (62101d4) in the models, against 41a6bd0 (issue 7).
# Artifacts compiled here (`npx compile bundled:flux2_dev --target h100 --size 1024x1024 --shape txt_tokens=512`,
# `npx compile bundled:qwen_image --target h100 --batch 2 --text-length 32`) at both commits, tarred as .gpu/S24/art.tar.xz:
# session 19's V4 (outputs of new against old, steps alternating, then each once with --profile).
D=.gpu/S24 ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session19-V4.sh

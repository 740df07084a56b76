#!/bin/sh
# Session 18 call B8: Qwen-Image end to end with the new default (FP8 P·V, two P arrays), `npx bench --e2e --no-baseline`,
# the pipeline compiled as session 16's T5 (the 32-token text module only; .scratch/pipe/qwen32.pipeline.json), at this
# session's tree: `npx compile .scratch/pipe/qwen32.pipeline.json --target h100 --out /tmp/qp/qwen-image`,
# `tar -cJf .gpu/B8/pipe.tar.xz -C /tmp/qp qwen-image`. Session 16's T5 script with D.
D=.gpu/B8 sh bench/gpu/calls/session16-T5.sh

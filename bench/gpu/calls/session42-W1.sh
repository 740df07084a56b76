#!/bin/sh
# Session 42 call W1: the compiled transformers against diffusers' bf16 models holding the same (synthetic) weights, one step
# (session 20's W1 script): Flux.2 (1024x1024, 512 text tokens) and Qwen-Image's 256-token batch-1 module (`--text-valid 27`),
# each with {"attention": "fp8-pv"} ("old": the default of sessions 18-41) and with the default policy ("new": the integer
# P·V since 6cdfca6), compiled at 6cdfca6. .gpu/W42: art.tar.xz, the fills (`npx tsx runtime/gpu/run-cli.ts ART
# --synthetic-fills 42`, xz; the same for both policies but for the artifact's path), diffusers' src at 58eb52c (`git archive`).
D=.gpu/W42 MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh

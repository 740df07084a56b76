#!/bin/sh
# Session 31 call W1 (issue 7): the compiled transformers against diffusers' bf16 models holding the same (synthetic) weights,
# one step (session 20's W1 script): Flux.2 (1024x1024, 512 text tokens) and Qwen-Image's 256-token batch-1 module, each
# with the default policy ("old") and with {"attention": "int8-pv"} ("new"), compiled at 208bbd2. .gpu/W31: art.tar.xz,
# the fills (`run-cli ART --synthetic-fills 42`, xz), diffusers' src at 58eb52c (`git archive`).
D=.gpu/W31 MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh

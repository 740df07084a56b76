#!/bin/sh
# Session 23 call H2: the compiled transformers against diffusers' bf16 models holding the same (synthetic) weights, one
# step (session 20's W1 script, issue 7's cosine >= 0.99): Flux.2 and Qwen-Image's 256-token module at a36f702 (old) and
# with Q/K rounded to bf16 in the attention pack and parked as bf16 (new). .gpu/H2: art.tar.xz, session 20's fills and
# diffusers source.
D=.gpu/H2 MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh

#!/bin/sh
# Session 22 call W1: the compiled transformers against diffusers' bf16 models holding the same (synthetic) weights,
# one step (session 20's W1 script, issue 7's cosine >= 0.99): Flux.2 before (HEAD 10d5b65, old) and with the SwiGLU in
# the own GEMM's epilogue (new); Qwen-Image's 256-token module before the fast GELU (1a40a74, old) and with it (new).
# .gpu/W3: art.tar.xz (flux-{old,new}: call G2's; qwen256-{old,new}), session 20's fills and diffusers source.
D=.gpu/W3 MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh

#!/bin/sh
# Session 30 call V1 (issues 6, 7): the integer P·V's s8 V quantized in the V projection's GEMM epilogue and the pack
# (fuse-vquant for pv='int8'; "i31", compiled with `--policy` `{"attention": "int8-pv"}` at the fusion's tree) against the
# standalone AttentionQuantizeV launches ("i30", at 803bcbb) and the default ("def", 803bcbb): session 15's G1 (outputs
# against i30, which the fused build must equal bit for bit; then the steps alternating, two rounds), Flux.2 at 1024x1024
# with 512 text tokens, Qwen-Image at batch 2 with 32 text tokens; artifacts in .gpu/V30/art.tar.xz.
set -u
D=.gpu/V30 MODELS="flux qwen" VARIANTS="i30 i31 def" ROUNDS=2 sh bench/gpu/calls/session15-G1.sh

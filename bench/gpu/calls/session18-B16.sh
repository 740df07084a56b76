#!/bin/sh
# Session 18 call B16: call B7 again on another machine (the same artifacts: bf16 P·V "def" against FP8 P·V "pv", now the default).
D=.gpu/B7 MODELS="flux qwen" VARIANTS="def pv" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh

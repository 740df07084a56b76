#!/bin/sh
# Session 18 call B12: where the default step's time goes now (FP8 P·V by default): call B7's "pv" artifacts (identical
# to the default compile: the same hot cubin and graph), each launch timed alone (--profile). Session 15's G1 script.
D=.gpu/B7 MODELS="flux qwen" VARIANTS="pv" ROUNDS=1 PROFILE=1 sh bench/gpu/calls/session15-G1.sh

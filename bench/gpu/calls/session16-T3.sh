#!/bin/sh
# Session 16, call T3 (`D=.gpu/T3 sh THIS`): the twin rule as landed (b1099a2: a thin twin the own kernel would
# not take alone, after its big twin's tiles) against the models compiled before (base, HEAD 925860b):
# outputs, then steps alternating, three rounds, and a profile of each model's twin3 build
# (bench/gpu/calls/session15-G1.sh).
set -u
D=${D:?} MODELS="flux qwen" VARIANTS="twin3 base" ROUNDS=3 PROFILE=1 sh bench/gpu/calls/session15-G1.sh

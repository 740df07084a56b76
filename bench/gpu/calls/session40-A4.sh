#!/bin/sh
# Session 40, call A4 (GPU host): the integer P·V's Flux.2 kernel at 7b3c35a (intMax, three-input maxima) by hand-over point
# ('issue', 'scores', 'max' = the descriptor's, 'mid', 'exp') and, at 'max', with every 8th column group's exponentials by
# polynomial (poly8) or two shared-memory stages (st2): .gpu/v/sw,
# `ATTN_CASES='^flux2_single_int8pv(_h(issue|scores|max|mid|exp)|_hmax_(poly8|st2))?$'`, three rounds.
set -u
DIRS="sw:.gpu/v/sw" ROUNDS=3 sh bench/gpu/calls/attention-ab.sh

#!/bin/sh
# Session 21 call F2: after the review's mends (the amax epilogue's warps past M send their zeros to batch 0's row;
# fuse-vquant after fuse-horizontal, the same launch plans as F1's), Qwen-Image (the model with a partial amax tile: its
# 64-row text twin) against the session's start (23c969c): outputs compared, one round of steps.
set -u
D=.gpu/F2s21 MODELS=qwen VARIANTS="old new" ROUNDS=${ROUNDS:-1} sh bench/gpu/calls/session15-G1.sh

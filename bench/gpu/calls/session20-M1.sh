#!/bin/sh
# Session 20 call M1: session 19's step-memo and end-to-end call (bench/gpu/calls/session19-M1.sh: the CUDA-graph step and
# the memo-restoring step, Qwen-Image end to end with the memo off and on, `npx bench` with its step-memo row) on this
# session's artifacts: .gpu/M1new/art.tar.xz (art/{flux,qwen} compiled with the residual epilogue) and pipe.tar.xz (the
# 32-token Qwen-Image pipeline of session 16's T5 header, compiled at this tree).
set -u
mkdir -p .gpu/M1 && cp .gpu/M1new/art.tar.xz .gpu/M1new/pipe.tar.xz .gpu/M1/
STEP_ROUNDS=${STEP_ROUNDS:-1} ROUNDS=${ROUNDS:-1} BENCH=${BENCH:-1} sh bench/gpu/calls/session19-M1.sh

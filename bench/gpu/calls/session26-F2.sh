#!/bin/sh
# Session 26 call F2: session 21's F1 on the artifacts of call F1 (.gpu/F1: old 0b1595f, new HEAD with dc_fp8_scale): the
# outputs again, two timing rounds alternating, then `npx bench --no-baseline` on the new ones. Run as
# `D=.gpu/F1 ROUNDS=2 sh bench/gpu/calls/session21-F1.sh` (this file says so).
set -u
D=.gpu/F1 ROUNDS=2 sh bench/gpu/calls/session21-F1.sh

#!/bin/sh
# Session 29 call F3 (issue 7): call F2's `npx bench --no-baseline --iters 20` once more (session 27's F1, one round) on
# the same artifacts (.gpu/F29, compiled at fb267ff), on whichever card the call gets.
set -u
D=.gpu/F29 ROUNDS=1 sh bench/gpu/calls/session27-F1.sh

#!/bin/sh
# Session 21 call V2: as V1, the pack's V scales loaded before its rows (their latency under the rows' loads), three
# rounds. Old (HEAD 23c969c) and new artifacts in .gpu/V2s21/art.tar.xz.
set -u
D=.gpu/V2s21 ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session19-V4.sh

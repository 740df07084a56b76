#!/bin/sh
# Session 41, call A9: A8's persistent launches with the last tile's V stage freed after the final P·V (A8 hung without it:
# the next item's producer waited on that stage), against np (A8's folder). pers prepared as in A8.
DIRS="pers:.gpu/v/pers np:.gpu/v/np" ROUNDS=2 TIMEOUT_S=45 KEEP=pers sh bench/gpu/calls/attention-ab.sh

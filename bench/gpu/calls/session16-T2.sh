#!/bin/sh
# Session 16, call T2 (`D=.gpu/T2 sh THIS`): call T1's script with the twin's tiles last (T1 had them first; the
# tile order is in the artifacts and kernels under $D), variants "twin2 base", and a profile of twin2.
VARIANTS="twin2 base" PROFILE=1 exec sh bench/gpu/calls/session16-T1.sh

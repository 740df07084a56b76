#!/bin/sh
# Session 41, call S1: the SASS of A1's folders (base41: the integer P·V kernel at HEAD; ut41: with session41-utrace.py's marks,
# whose schedule moved) for the turn-by-turn comparison in bench/RESULTS.md "Session 41".
for d in base41 ut41; do cuobjdump -sass .gpu/v/$d/kernels.cubin > $OUT/sass-$d.txt 2>&1; done

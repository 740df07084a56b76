#!/bin/sh
# Session 34 call Z4: a pipeline with two sizes served over HTTP on the GPU. The whole Flux.2 [dev] pipeline
# (models/flux2/full.pipeline.json, structure only) compiled on the host by the bundled compiler for 1024x1024 and 1024x768
# (`--size 1024x1024,1024x768`), served with synthetic weights 42 (`run.sh serve`); a request at 1024x1024 (its PNG's size
# checked, timed), then test/gpu/serve_smoke.py at SIZE=1024x768 (PNG / WebP / JPEG, same bytes for the same seed, n = 2,
# bad requests, SIGTERM and the exit status). As run, the serve lacked --storage and --max-queued 1, so the smoke's url and 429
# checks failed; bench/gpu/serve_sizes.sh, which now holds the serve-and-check body Z4 and Z6 shared, passes them.
set -u
W=/tmp/z4; mkdir -p $W
ln -sfn ../../models .gpu/compiler/models
/usr/bin/time -f "compile wall %e s" sh .gpu/rt/run.sh compile models/flux2/full.pipeline.json --size 1024x1024,1024x768 --out $W/flux2 > $OUT/compile.log 2>&1; echo "compile rc $?"
grep -v '^\s\s\s\s' $OUT/compile.log | tail -9 | cut -c1-300
sh bench/gpu/serve_sizes.sh $W/flux2 flux2 1024x1024 1024x768

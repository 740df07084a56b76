#!/bin/sh
# Session 28 calls T2 and T3 (issues 6, 7): the narrow last key tile (AttentionDescriptor.narrowLastTile: Qwen-Image's 4128
# keys compute 96 of the 22nd 192-key tile) and the last-wave pieces (tailPieces, Flux.2), against the session's start.
#  1. (MODEL=qwen only) the attention harness on `ATTN_CASES='^(flux2_(single|joint)_fp8pv(_whole)?|qwen_image_t32_fp8pv(_wholelast)?)$'
#     npx tsx test/gpu/attention.ts prepare .gpu/narrow28` (expected.json moved out before carrying; checked afterwards with
#     `attention.ts check`), two rounds with 1 s of sustained energy each, round 1's outputs kept;
#  2. MODEL's step, artifacts compiled at b0d522b (MODEL-old) and at this tree (MODEL-new), in .gpu/T28/art.tar.xz: session 15's
#     G1 (outputs of new against old, the step alternating, 3 rounds);
#  3. each launch timed alone (--profile) for old and new, the JSONs kept.
set -u
M=${MODEL:?}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
if [ $M = qwen ]; then
  nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
  for r in 1 2; do
    ENERGY_S=1 timeout 120 /tmp/ah .gpu/narrow28 $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
    grep -E "^(energy)" $OUT/log-$r.txt | grep attention
    [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
  done
  rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
fi
D=.gpu/T28 MODELS=$M VARIANTS="old new" ROUNDS=3 sh bench/gpu/calls/session15-G1.sh
for v in old new; do
  timeout 120 sh .gpu/rt/run.sh /tmp/art/$M-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>> $OUT/log.txt; echo "profile $M-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-$M-$v.json
  python3 -c "
import json; d=json.load(open('$OUT/profile-$M-$v.json'))['profile']
print('$M-$v', ' '.join('%s %.2f' % (k, v['ms']) for k, v in sorted(d['byKind'].items(), key=lambda kv: -kv[1]['ms'])[:5]))"
done

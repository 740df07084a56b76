#!/bin/sh
# Session 39, call A2 (GPU host): the ping-pong's hand-over points 'scores', 'max' and 'mid' against 'issue' on the integer
# P·V kernels, three rounds (.gpu/v/b: `ATTN_CASES='^(flux2_single_int8pv|qwen_image_t32_int8pv|tiny_qwen_image_mask_int8pv)(_h(scores|max|mid))?$'
# npx tsx test/gpu/attention.ts prepare .gpu/v/b`), then one run of the turn trace (.gpu/v/t: the cases
# '^(flux2_single_int8pv|flux2_single_fp8pv)(_hmax)?$' prepared with session 31's clock() marks in the turn, as
# bench/gpu/calls/session39-trace.py applies them), summarised by bench/gpu/calls/session31-trace-summary.py.
set -u
DIRS="b:.gpu/v/b" ROUNDS=3 sh bench/gpu/calls/attention-ab.sh
timeout 300 /tmp/ah .gpu/v/t "$OUT" > "$OUT/trace-log.txt" 2>&1; echo "trace rc $?"; rm -f "$OUT/outputs.bin"
python3 bench/gpu/calls/session31-trace-summary.py "$OUT/trace-log.txt" | tee "$OUT/trace-summary.txt"

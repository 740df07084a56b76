"""Opcode counts of each attention kernel (attn_*) in a cuobjdump -sass listing, one line a kernel:
`[PREFIX] NAME TOTAL OP:N ...` (the 24 most common). Usage: python3 bench/gpu/sass_ops.py SASS.txt [PREFIX]
(bench/gpu/calls/attention-ab.sh SASS=1 and session 29's call I2)."""
import collections
import re
import sys

count, fn = collections.defaultdict(collections.Counter), None
for line in open(sys.argv[1]):
    m = re.search(r'Function : (\S+)', line)
    if m:
        fn = m.group(1)
        continue
    m = re.search(r'\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)(\.[A-Z0-9_.]*)?', line)
    if fn and fn.startswith('attn_') and m:
        count[fn][m.group(1)] += 1
prefix = f'{sys.argv[2]} ' if len(sys.argv) > 2 else ''
for f, c in count.items():
    print(f'{prefix}{f}', sum(c.values()), ' '.join(f'{k}:{v}' for k, v in c.most_common(24)))

"""Where ptxas put the attention kernels' exponentials relative to their wgmma waits (sessions 18, 27).

Usage: python3 bench/gpu/sass_mufu_waits.py SASS.txt [--mix] [--trace]  (the text of `cuobjdump -sass kernels.cubin`).
Prints, per attn_* kernel, the MUFU.EX2 count of each segment between WARPGROUP.DEPBAR waits, as
`count|wN` (N: the wait's group count, 1 = the Q·Kᵀ wait, 0 = all, i.e. the P·V in flight), then
the count after the last wait. --mix adds the kernel's instruction count and the counts of the softmax's
and the MMAs' opcodes; --trace the whole kernel as runs of wgmma (G), waits (W) and MUFU (M), e.g. G10WM53WM45.
"""
import collections
import re
import sys

MIX = ('QGMMA', 'HGMMA', 'MUFU', 'HMNMX2', 'HFMA2', 'HADD2', 'FMNMX', 'FFMA', 'FADD', 'FMUL', 'F2FP', 'PRMT', 'LDL', 'STL', 'WARPSYNC', 'BAR')
OPCODE = re.compile(r'\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_.]*)?)')

text = open(sys.argv[1]).read()
for function in re.split(r'\n\s+Function : ', text)[1:]:
    name = function.split('\n')[0].strip()
    if not name.startswith('attn_'):
        continue
    segments, count, ops = [], 0, []
    for line in function.split('\n'):
        if 'MUFU.EX2' in line:
            count += 1
        wait = re.search(r'WARPGROUP\.DEPBAR\.LE gsb0, (0x[01])', line)
        if wait:
            segments.append(f'{count}|w{wait.group(1)[-1]}')
            count = 0
        op = OPCODE.search(line)
        if op:
            ops.append(op.group(1))
    segments.append(str(count))
    print(name, ' '.join(segments))
    if '--mix' in sys.argv:
        c = collections.Counter(o.split('.')[0] for o in ops)
        print(f'  {len(ops)} instructions;', ' '.join(f'{k}={c[k]}' for k in MIX))
    if '--trace' in sys.argv:
        trace = ''.join('M' if o.startswith('MUFU') else 'W' if o.startswith('WARPGROUP.DEPBAR') else 'G' if o.startswith(('QGMMA', 'HGMMA')) else '' for o in ops)
        print('  trace', re.sub(r'([GM])\1+', lambda m: f'{m.group(1)}{len(m.group(0))}', trace))

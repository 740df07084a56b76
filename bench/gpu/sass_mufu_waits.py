"""Where ptxas put the attention kernels' exponentials relative to their wgmma waits (session 18).

Usage: python3 bench/gpu/sass_mufu_waits.py SASS.txt  (the text of `cuobjdump -sass kernels.cubin`).
Prints, per attn_* kernel, the MUFU.EX2 count of each segment between WARPGROUP.DEPBAR waits, as
`count|wN` (N: the wait's group count, 1 = the Q·Kᵀ wait, 0 = all, i.e. the P·V in flight), then
the count after the last wait.
"""
import re
import sys

text = open(sys.argv[1]).read()
for function in re.split(r'\n\s+Function : ', text)[1:]:
    name = function.split('\n')[0].strip()
    if not name.startswith('attn_'):
        continue
    segments, count = [], 0
    for line in function.split('\n'):
        if 'MUFU.EX2' in line:
            count += 1
        wait = re.search(r'WARPGROUP\.DEPBAR\.LE gsb0, (0x[01])', line)
        if wait:
            segments.append(f'{count}|w{wait.group(1)[-1]}')
            count = 0
    segments.append(str(count))
    print(name, ' '.join(segments))

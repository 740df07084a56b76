"""Session 39: puts session 31's clock() marks (bench/gpu/calls/session31-trace.patch, which no longer applies) into the
ping-pong turn of templates/attention.cu.njk, in place: CTA 7, lane 0 of each consumer warpgroup, tiles below 32, marks
0-6 at the turn's start, after the named sync, after the issue, after the Q·Kᵀ wait, after the softmax, after the P·V
wait, after the pack. Prepare the traced cases, then `git checkout templates/attention.cu.njk`. The harness prints a
kernel's marks after its timing (`trace` lines); bench/gpu/calls/session31-trace-summary.py summarises them.
Usage: python3 bench/gpu/calls/session39-trace.py"""
from template_edit import TemplateEdit

t = TemplateEdit()
rep = t.rep
t.before_kernel('__device__ unsigned int {{ name }}_trace[2 * 32 * 8];  // TRACE experiment\n'
                '#define TR(k) do { if (blockIdx.x == 7 && (threadIdx.x & 127) == 0 && j < 32) { {{ name }}_trace[((threadIdx.x >> 7) - 1) * 256 + j * 8 + (k)] = (unsigned)clock(); } } while (0)\n')
rep('    const int st = j % STAGES, sp = (j - 1) % STAGES;\n', '    const int st = j % STAGES, sp = (j - 1) % STAGES;\n    TR(0);\n')
rep('    dca_named_sync(1 + wg, 256);\n{{- issueScores(Sx', '    dca_named_sync(1 + wg, 256);\n    TR(1);\n{{- issueScores(Sx')
rep("    dca_wgmma_wait<{{ pvInFlight }}>();\n{{- fenceAll(Sx, lastKeys ~ ' / 2' if narrow else 'BN / 2') }}\n",
    "    TR(2);\n    dca_wgmma_wait<{{ pvInFlight }}>();\n{{- fenceAll(Sx, lastKeys ~ ' / 2' if narrow else 'BN / 2') }}\n    TR(3);\n")
rep("{{- softmax('SL' if narrow else 'S', 'j0 + j', lastKeys if narrow else 'BN', narrow, true) }}\n",
    "{{- softmax('SL' if narrow else 'S', 'j0 + j', lastKeys if narrow else 'BN', narrow, true) }}\n    TR(4);\n")
rep("    if (lane == 0) dca_mbar_arrive(VEMPTY(sp));  // V stage of tile j - 1 free\n{{- rescaleO(split) }}\n{{- packP('SL' if narrow else 'S', Pout, lastKeys if narrow else 'BN') }}\n",
    "    if (lane == 0) dca_mbar_arrive(VEMPTY(sp));  // V stage of tile j - 1 free\n    TR(5);\n{{- rescaleO(split) }}\n{{- packP('SL' if narrow else 'S', Pout, lastKeys if narrow else 'BN') }}\n    TR(6);\n")
t.write()

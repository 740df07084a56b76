"""Session 42: a turn-level timeline of the attention kernel (full ping-pong). Puts clock64() marks in
templates/attention.cu.njk, in place, in the paired turns of tiles 9 and 10 (u64 [grid][32]: slot 16w + 8(j & 1) + k for
consumer warpgroup w, lane 0 of its first warp), k = 0..7: its turn's barrier passed, the turn's MMAs issued, its scores
awaited, the maxima known (the hand-over), the exponentials done, the softmax done, its P·V awaited, P packed. The harness
writes the array to OUT/utrace-CASE.bin (the unit timeline's symbol). Prepare the traced cases, then
`git checkout templates/attention.cu.njk`; bench/gpu/calls/session42-ttrace-summary.py reads the files.
Usage: python3 bench/gpu/calls/session42-ttrace.py"""
from template_edit import TemplateEdit

t = TemplateEdit()
rep = t.rep
t.declare_trace('TTRACE', '#define TT(k) do { if ((j == 9 || j == 10) && (threadIdx.x & 127) == 0) { {{ name }}_utrace[blockIdx.x * 32 + 16 * wg + 8 * (j & 1) + (k)] = clock64(); } } while (0)\n')
rep("    dca_named_sync(1 + wg, 256);\n{{- issueScores(Sx, 'st', lastWgmmaS if narrow else wgmmaS) }}\n    dca_wgmma_commit();\n{{- issuePV('sp', Pin) }}\n    dca_wgmma_commit();\n",
    "    dca_named_sync(1 + wg, 256);\n    TT(0);\n{{- issueScores(Sx, 'st', lastWgmmaS if narrow else wgmmaS) }}\n    dca_wgmma_commit();\n{{- issuePV('sp', Pin) }}\n    dca_wgmma_commit();\n    TT(1);\n")
rep("    dca_wgmma_wait<{{ pvInFlight }}>();\n{{- fenceAll(Sx,", "    dca_wgmma_wait<{{ pvInFlight }}>();\n    TT(2);\n{{- fenceAll(Sx,")
rep("        dca_named_arrive(2 - wg, 256);  // the tensor cores to the other warpgroup once this tile's maxima are known (handOver 'max')\n",
    "        dca_named_arrive(2 - wg, 256);  // the tensor cores to the other warpgroup once this tile's maxima are known (handOver 'max')\n        TT(3);\n")
rep("{%- if handOff and handOver == 'exp' %}", "{%- if handOff %}\n        TT(4);\n{%- endif %}\n{%- if handOff and handOver == 'exp' %}")
rep("{{- softmax('SL' if narrow else 'S', 'j0 + j', lastKeys if narrow else 'BN', narrow, true) }}\n{%- if pvInFlight %}\n    dca_wgmma_wait<0>();\n{%- endif %}\n",
    "{{- softmax('SL' if narrow else 'S', 'j0 + j', lastKeys if narrow else 'BN', narrow, true) }}\n    TT(5);\n{%- if pvInFlight %}\n    dca_wgmma_wait<0>();\n{%- endif %}\n    TT(6);\n")
rep("{{- packP('SL' if narrow else 'S', Pout, lastKeys if narrow else 'BN') }}\n{%- endmacro %}",
    "{{- packP('SL' if narrow else 'S', Pout, lastKeys if narrow else 'BN') }}\n    TT(7);\n{%- endmacro %}")
t.write()

"""Session 41: a unit-level timeline of the attention kernel (full ping-pong). Puts clock64() marks in
templates/attention.cu.njk, in place, for every CTA (u64 [grid][32]): slot 0 the producer's entry, 1 its %globaltimer,
2 its SM; for consumer warpgroup w (lane 0 of its first warp) slots 4 + 14w + k, k = 0..9: its start, Q in, the first
turn's start, the peeled first turn's end, the loop's end, the last turn's barrier passed, its P·V awaited, (warpgroup 0)
the other's last hand-over, O / l ready, the epilogue's end. The harness writes the array to OUT/utrace-CASE.bin. Prepare
the traced cases, then `git checkout templates/attention.cu.njk`; bench/gpu/calls/session41-utrace-summary.py reads the files.
Usage: python3 bench/gpu/calls/session41-utrace.py"""
from template_edit import TemplateEdit

t = TemplateEdit()
rep = t.rep
t.declare_trace('UTRACE', '#define UT(k) do { if ((threadIdx.x & 127) == 0 && threadIdx.x >= 128) { {{ name }}_utrace[blockIdx.x * 32 + 4 + ((threadIdx.x >> 7) - 1) * 14 + (k)] = clock64(); } } while (0)\n')
rep('  if (threadIdx.x == 0) {\n    dca_mbar_init(BAR(0), ',
    '  if (threadIdx.x == 0) {\n    unsigned long long gt; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(gt)); unsigned smid; asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));\n'
    '    {{ name }}_utrace[blockIdx.x * 32] = clock64(); {{ name }}_utrace[blockIdx.x * 32 + 1] = gt; {{ name }}_utrace[blockIdx.x * 32 + 2] = smid;\n'
    '  }\n  if (threadIdx.x == 0) {\n    dca_mbar_init(BAR(0), ')
rep('  dca_setmaxnreg_inc<240>();\n#endif\n  const int cw = warp - 4;', '  dca_setmaxnreg_inc<240>();\n#endif\n  UT(0);\n  const int cw = warp - 4;')
rep('\n  dca_mbar_wait(BAR(0), 0);\n', '\n  dca_mbar_wait(BAR(0), 0);\n  UT(1);\n')
rep("  dca_mbar_wait(KFULL(0), 0);\n  dca_named_sync(1 + wg, 256);\n{{- issueScores(sAcc, '0') }}",
    "  dca_mbar_wait(KFULL(0), 0);\n  dca_named_sync(1 + wg, 256);\n  UT(2);\n{{- issueScores(sAcc, '0') }}")
rep("{{- packP('S', 'P0' if pBuffers == 2 else 'P') }}\n{%- if pBuffers == 2 %}\n",
    "{{- packP('S', 'P0' if pBuffers == 2 else 'P') }}\n  UT(3);\n{%- if pBuffers == 2 %}\n")
rep("  {\n    const int sp = (nTiles - 1) % STAGES;\n    dca_mbar_wait(VFULL(sp)",
    "  UT(4);\n  {\n    const int sp = (nTiles - 1) % STAGES;\n    dca_mbar_wait(VFULL(sp)")
rep("\n}\n#undef BAR", "\n  UT(9);\n}\n#undef BAR")
rep("    dca_mbar_wait(VFULL(sp), ((nTiles - 1) / STAGES) & 1);\n    dca_named_sync(1 + wg, 256);\n",
    "    dca_mbar_wait(VFULL(sp), ((nTiles - 1) / STAGES) & 1);\n    dca_named_sync(1 + wg, 256);\n    UT(5);\n")
rep("  }\n  if (wg == 0) dca_named_sync(1, 256);  // the other warpgroup's last hand-over\n",
    "    UT(6);\n  }\n  if (wg == 0) dca_named_sync(1, 256);  // the other warpgroup's last hand-over\n  UT(7);\n")
rep("  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;\n",
    "  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;\n  UT(8);\n")
t.write()

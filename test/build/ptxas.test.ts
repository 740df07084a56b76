// parsePtxasReport on canned `ptxas -v` text (no nvcc needed): entries, callees, older formats.
import { describe, expect, it } from 'vitest';
import { parsePtxasReport } from '../../compiler/build/ptxas.ts';
import { firstErrors } from '../../compiler/build/nvcc.ts';

const REPORT = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z5spillPfPKi' for 'sm_90a'
ptxas info    : Function properties for _Z5spillPfPKi
    1024 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 32 registers, used 1 barriers, 1024 bytes cumulative stack size, 512 bytes smem
ptxas info    : Compile time = 42.131 ms
ptxas info    : Function properties for _Z6helperf
    16 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function 'add' for 'sm_100a'
ptxas info    : Function properties for add
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, 352 bytes cmem[0]
`;

describe('parsePtxasReport', () => {
  it('reads registers, shared memory, spills and stack per function', () => {
    const fs = parsePtxasReport(REPORT);
    expect(fs).toEqual([
      { name: '_Z5spillPfPKi', entry: true, registers: 32, sharedBytes: 512, spillStoreBytes: 8, spillLoadBytes: 12, stackBytes: 1024, barriers: 1 },
      { name: '_Z6helperf', entry: false, registers: 0, sharedBytes: 0, spillStoreBytes: 4, spillLoadBytes: 4, stackBytes: 16, barriers: 0 },
      { name: 'add', entry: true, registers: 10, sharedBytes: 0, spillStoreBytes: 0, spillLoadBytes: 0, stackBytes: 0, barriers: 0 },
    ]);
  });

  it("marks a function whose wgmma ptxas serialized (C7515), the note coming before its entry line", () => {
    const fs = parsePtxasReport(`ptxas info    : (C7515) Potential Performance Loss: wgmma.mma_async instructions are serialized due to non wgmma instructions defining accumulator registers of a wgmma between start and end of the pipeline stage in the function 'gemm8_x'
ptxas info    : Compiling entry function 'gemm8_x' for 'sm_90a'
ptxas info    : Function properties for gemm8_x
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 168 registers, used 16 barriers
ptxas info    : Compiling entry function 'gemm8_y' for 'sm_90a'
ptxas info    : Used 168 registers, used 16 barriers
`);
    expect(fs.map((f) => [f.name, f.entry, f.registers, f.wgmmaSerialized])).toEqual([
      ['gemm8_x', true, 168, 'C7515: non wgmma instructions defining accumulator registers of a wgmma between start and end of the pipeline stage'],
      ['gemm8_y', true, 168, undefined],
    ]);
  });

  it('returns nothing for text without a report', () => {
    expect(parsePtxasReport('')).toEqual([]);
    expect(parsePtxasReport('nvcc warning : something')).toEqual([]);
  });
});

describe('firstErrors', () => {
  it('keeps the error lines, drops source echo and the summary, trims to length', () => {
    const log = [
      '/kernels/k.cu(3): error: identifier "y" is undefined',
      '    float x = y;',
      '              ^',
      '/kernels/k.cu(4): error: expected a ";"',
      '2 errors detected in the compilation of "k.cu".',
    ].join('\n');
    expect(firstErrors(log)).toBe('/kernels/k.cu(3): error: identifier "y" is undefined | /kernels/k.cu(4): error: expected a ";"');
    expect(firstErrors(log, 1)).toBe('/kernels/k.cu(3): error: identifier "y" is undefined (+1 more)');
    expect(firstErrors('x'.repeat(1000), 3, 50)).toHaveLength(50);
  });
});

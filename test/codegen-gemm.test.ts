/**
 * The compiler's own FP8 GEMM (compiler/codegen/gemm.ts, templates/gemm_fp8.cu.njk): what the
 * descriptor refuses, the shared memory it asks for, what the rendered source holds for each choice
 * (tensor-store epilogue for bf16 Y, register stores for fp32 Y, promotion into a separate fp32 sum,
 * the scaled epilogue), nvcc builds of the variants for sm_90a without spills (the kernel traps
 * on any other target), the launch plan's route (policy gemm "own": deferred FP8 GEMMs whose shape it
 * takes, X/W/Y as tensor maps the runtime encodes; the artifact checks of those maps), and the kernel
 * parameter slots a tensor map needs. Numerics and speed against cuBLASLt on an H100: bench/gpu/gemm-own.ts and
 * bench/gpu/gemm_own.cu (bench/RESULTS.md "Session 9: the compiler's own FP8 GEMM").
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { H100_SMS } from '../compiler/codegen/device.ts';
import { type GemmDescriptor, OWN_GEMM_MIN_TILES, gemmSharedBytes, groupRows, ownGemm, renderGemm } from '../compiler/codegen/gemm.ts';
import { type Launch, deferDequant } from '../compiler/codegen/plan.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { compileModel } from '../compiler/compile.ts';
import { defaultPolicy, loadPolicy } from '../passes/quantize/policy.ts';
import { openArtifact } from '../runtime/gpu/artifact.ts';
import { KernelParams } from '../runtime/gpu/cuda.ts';
import { DEFAULT_VARIANTS, SHAPES, variant } from '../bench/gpu/gemm-own.ts';
import { tinyDir } from './helpers/fixtures.ts';

const base: GemmDescriptor = { kind: 'gemm-fp8', m: 4608, n: 18432, k: 6144, bn: 256, stages: 4, groupM: 8, promote: 0, epilogue: 'unscaled', bias: false };

describe('own FP8 GEMM descriptor', () => {
  it('refuses tiles that do not divide N, K off 128, promotion at 256 wide, a bias without scales, shared memory past 227 KB, one stage, empty shapes', () => {
    expect(() => renderGemm({ ...base, n: 18432 + 128 })).toThrow(/N a multiple of the tile width 256/);
    expect(() => renderGemm({ ...base, k: 6144 + 64 })).toThrow(/K a multiple of 128/);
    expect(() => renderGemm({ ...base, bn: 160 })).toThrow(/an output tile 128, 192 or 256 wide/);
    expect(() => renderGemm({ ...base, promote: 4 })).toThrow(/tile width <= 192 with promotion/);
    expect(() => renderGemm({ ...base, bias: true })).toThrow(/a bias with the scaled epilogue/);
    expect(() => renderGemm({ ...base, bn: 192, stages: 5 })).toThrow(/at most 232448 bytes of shared memory/);
    // One stage would deadlock (block kb's stage is released after block kb + 1's MMAs are issued);
    // empty shapes and a zero group have no tiles or divide by zero.
    expect(() => renderGemm({ ...base, stages: 1 })).toThrow(/stages an integer >= 2 \(a stage is released one K block late\)/);
    expect(() => renderGemm({ ...base, k: 0 })).toThrow(/k an integer >= 1/);
    expect(() => renderGemm({ ...base, n: 0 })).toThrow(/n an integer >= 1/);
    expect(() => renderGemm({ ...base, m: 100.5 })).toThrow(/m an integer >= 1/);
    expect(() => renderGemm({ ...base, groupM: 0 })).toThrow(/groupM an integer >= 1/);
    expect(() => renderGemm({ ...base, stages: 2 })).not.toThrow();
    // Without the bf16 tensor-store buffers five stages of 192 fit.
    expect(() => renderGemm({ ...base, bn: 192, stages: 5, out: 'fp32' })).not.toThrow();
  });

  it('shared memory: stages of a 128-row X tile and a BN-row W tile of 128 codes, 32 KB of Y chunks for bf16, 1 KB alignment, barriers', () => {
    expect(gemmSharedBytes({ bn: 256, stages: 4 })).toBe(1024 + 4 * (16384 + 32768) + 32768 + 64);
    expect(gemmSharedBytes({ bn: 192, stages: 5, out: 'fp32' })).toBe(1024 + 5 * (16384 + 24576) + 80);
    expect(renderGemm(base).sharedBytes).toBe(gemmSharedBytes(base));
  });

  it('a persistent grid: one CTA per SM, fewer where there are fewer tiles', () => {
    expect(renderGemm(base).grid).toBe(H100_SMS);
    expect(renderGemm({ ...base, m: 128, n: 1024, bn: 256 }).grid).toBe(4);
    // M need not be a multiple of 128: the last row tile is partial.
    expect(renderGemm({ ...base, m: 64, n: 3072, k: 3072, bn: 192 }).grid).toBe(16);
  });
});

describe('own FP8 GEMM source', () => {
  it('bf16 Y: staged through swizzled shared chunks and stored by the tensor copy engine; fp32 Y: stores from registers', () => {
    const bf16 = renderGemm(base).source;
    expect(bf16).toMatch(/cp\.async\.bulk\.tensor\.2d\.global\.shared::cta\.bulk_group/);
    expect(bf16).toMatch(/const DcTensorMap\* mapY = &tmY;/);
    expect(bf16).toMatch(/dcg_tma_store_2d\(mapY, yc0 \+ 64 \* ch, m0 \+ 64 \* \(cw\), buf\)/);
    expect(bf16).toMatch(/fence\.proxy\.async\.shared::cta/);
    expect(bf16).toMatch(/__nv_bfloat16\* __restrict__ out/);
    const f32 = renderGemm({ ...base, out: 'fp32' }).source;
    expect(f32).not.toMatch(/dcg_tma_store_2d\(mapY/);
    expect(f32).toMatch(/float\* __restrict__ out/);
    expect(f32).toMatch(/if \(r0 < M\) dca_store2\(out/);
    // The kernel itself (the shared attention.cuh helpers before it define shared-memory stores of their own).
    expect(f32.slice(f32.indexOf('extern "C" __global__'))).not.toMatch(/st\.shared\.b32/);
    expect(bf16.slice(bf16.indexOf('extern "C" __global__'))).toMatch(/st\.shared\.b32/);
  });

  it('operands by tensor copies into STAGES stages, four m64nBNk32 e4m3 wgmma a K block, one group in flight', () => {
    const k = renderGemm(base).source;
    expect(k).toMatch(/cp\.async\.bulk\.tensor\.2d\.shared::cluster\.global\.tile\.mbarrier::complete_tx::bytes/);
    expect(k).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n256k32\.f32\.e4m3\.e4m3/);
    expect(k).toMatch(/constexpr int BM = 128, BN = 256, BK = 128, STAGES = 4, GROUP_M = 8;/);
    expect(k).toMatch(/constexpr int M = 4608, N = 18432, KB = 6144 \/ BK;/);
    expect(k).toMatch(/dca_wgmma_wait<1>\(\);\s*if \(kb > 0 && leader\) dca_mbar_arrive\(EMPTY\(\(it - 1\) % STAGES\)\);/);
    expect(k).not.toMatch(/float sum\[BN \/ 2\]/);
  });

  it('promotion: each P-block sum added into a separate fp32 sum, the tensor cores restarting at each P', () => {
    const k = renderGemm({ ...base, bn: 192, promote: 8 }).source;
    expect(k).toMatch(/float sum\[BN \/ 2\];/);
    expect(k).toMatch(/kb % 8 != 0 \|\| kk > 0/);
    expect(k).toMatch(/if \(kb % 8 == 8 - 1 \|\| kb == KB - 1\) \{/);
    expect(k).toMatch(/sum\[i\] \+= acc\[i\];/);
    expect(k).toMatch(/float a = sum\[4 \* j\]/);
  });

  it('ping-pong: each warpgroup a whole 128-row tile (two m64 accumulators) at alternate positions, a stage read by one consumer', () => {
    const k = renderGemm({ ...base, bn: 128, stages: 6, schedule: 'pingpong' }).source;
    expect(k).toMatch(/if \(\(pos & 1\) != cw\) continue;/);
    expect(k).toMatch(/int it = pos \* KB;/);
    expect(k).toMatch(/\(acc1, dca_desc\(SX\(s\) \+ 64 \* 128 \+ kk \* 32\)/);
    expect(k).toMatch(/dca_mbar_init\(EMPTY\(s\), 1\);/);
    expect(k).toMatch(/dcg_tma_store_2d\(mapY, yc0 \+ 64 \* ch, m0 \+ 64 \* \(1\), buf\)/);
    expect(renderGemm(base).source).toMatch(/dca_mbar_init\(EMPTY\(s\), 2\);/);
    expect(() => renderGemm({ ...base, schedule: 'pingpong' })).toThrow(/ping-pong tile of 128 rows in registers/);
    expect(() => renderGemm({ ...base, bn: 128, promote: 4, schedule: 'pingpong' })).toThrow(/fast accumulation/);
  });

  it('Y chunk buffers: a tile of an odd number of chunks (cooperative, 192 wide) waits for every store before its first chunk, since the previous tile\'s last store went out of that buffer; even counts wait for all but the latest', () => {
    // A warpgroup's chunks alternate between two buffers and each is one bulk group: before a buffer is
    // written again, the group that last read it must be done. With 3 chunks a tile (buffers 0, 1, 0),
    // the next tile's chunk 0 (buffer 0) follows the latest group, which read buffer 0: wait_group 0.
    const odd = renderGemm({ ...base, bn: 192 }).source;
    expect(odd).toMatch(/if \(q == 0\) dcg_bulk_wait_read<0>\(\); else dcg_bulk_wait_read<1>\(\);/);
    expect(renderGemm({ ...base, bn: 192, promote: 8 }).source).toMatch(/if \(q == 0\) dcg_bulk_wait_read<0>\(\);/);
    // 2 or 4 chunks a tile (cooperative 128 / 256), 6 (ping-pong 192: two halves of 3): buffer 0's last
    // store is never the latest group when a tile starts.
    for (const d of [{ ...base, bn: 128 }, base, { ...base, bn: 192, schedule: 'pingpong' as const }]) {
      const k = renderGemm(d).source;
      expect(k, `${d.bn} ${d.schedule ?? 'cooperative'}`).not.toMatch(/dcg_bulk_wait_read<0>\(\); else/);
      expect(k).toMatch(/if \(leader\) dcg_bulk_wait_read<1>\(\);/);
    }
  });

  it('scaled epilogue: Y = acc · xs[m] · ws[n] + bias[n]', () => {
    const k = renderGemm({ ...base, epilogue: 'scaled', bias: true }).source;
    expect(k).toMatch(/const float\* __restrict__ xs, const float\* __restrict__ ws, const float\* __restrict__ bias\)/);
    expect(k).toMatch(/a = fmaf\(a \* x0, w\.x, bb\.x\);/);
  });

  it('scaled ping-pong: the tile\'s column scales, biases (pairs interleaved) and token scales staged in shared memory by cp.async; a bf16 bias read as pairs of its own type; the scales float32, the bias float32 or bf16, or the own kernel does not take the GEMM', () => {
    const f32 = ownGemm(4096, 18432, 6144, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'float32' })!.kernel.source;
    expect(f32).toMatch(/const float\* __restrict__ bias\)/);
    expect(f32).toMatch(/cp\.async\.ca\.shared\.global \[%0\], \[%1\], 8;" :: "r"\(SWS\(cw\) \+ 16 \* ti \+ 8\), "l"\(biasT \+ n0 \+ 2 \* ti\)/);
    expect(f32).toMatch(/const float\* biasT = bias;/);
    expect(f32).toMatch(/"l"\(xsT \+ m0 \+ ti\)/);
    expect(f32).toMatch(/a = fmaf\(a \* x0, wb\.x, wb\.z\);/);
    const bf16 = ownGemm(4096, 18432, 6144, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'bfloat16' })!.kernel.source;
    expect(bf16).toMatch(/const __nv_bfloat16\* __restrict__ bias\)/);
    expect(bf16).toMatch(/\], 4;" :: "r"\(SWS\(cw\) \+ 16 \* ti \+ 8\), "l"\(biasT \+ n0 \+ 2 \* ti\)/);
    expect(bf16).toMatch(/wb\.z = __uint_as_float\(__float_as_uint\(wb\.z\) << 16\);/);
    const plain = ownGemm(4096, 18432, 6144, 0, 'bfloat16', { xs: 'float32', ws: 'float32' })!.kernel.source;
    expect(plain).toMatch(/const float\* __restrict__ ws\) \{/);
    expect(plain).toMatch(/const float2 w = dca_lds_f2\(SWS\(cw\) \+ 4 \* \(c - n0\)\);/);
    expect(ownGemm(4096, 18432, 6144, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'float16' })).toBeUndefined();
    expect(ownGemm(4096, 18432, 6144, 0, 'bfloat16', { xs: 'bfloat16', ws: 'float32' })).toBeUndefined();
    expect(gemmSharedBytes({ bn: 192, stages: 4, epilogue: 'scaled', schedule: 'pingpong' })).toBe(gemmSharedBytes({ bn: 192, stages: 4 }) + 2 * (2 * 192 + 128) * 4);
  });

  it('staged scales: the shared memory the template lays out for them (SCALE_BYTES a consumer, before the barriers) is what gemmSharedBytes adds, and none without them', () => {
    for (const d of [
      { ...base, bn: 192, schedule: 'pingpong', epilogue: 'scaled', bias: true }, { ...base, bn: 128, stages: 5, schedule: 'pingpong', epilogue: 'scaled', bias: false },
      { ...base, bn: 192, schedule: 'pingpong', epilogue: 'scaled', bias: true, out: 'fp32' }, { ...base, epilogue: 'scaled', bias: true }, { ...base, bn: 192, schedule: 'pingpong' },
    ] as GemmDescriptor[]) {
      const k = renderGemm(d);
      const scaleBytes = Number(/SCALE_BYTES = (\d+), SCALES_BYTES = 2 \* SCALE_BYTES;/.exec(k.source)![1]);
      expect(2 * scaleBytes, JSON.stringify(d)).toBe(k.sharedBytes - gemmSharedBytes({ ...d, epilogue: 'unscaled' }));
      expect(scaleBytes > 0, JSON.stringify(d)).toBe(d.epilogue === 'scaled' && d.schedule === 'pingpong');
      expect(k.source).toMatch(/#define FULL\(s\) \(base \+ STAGES \* STAGE_BYTES \+ Y_BYTES \+ SCALES_BYTES \+ 8u \* \(s\)\)/);
    }
  });

  it('scaled ping-pong: a warpgroup barrier lies between its last read of a tile\'s staged scales and its copies of the next tile\'s (bf16 and fp32 Y, with and without a bias)', () => {
    // The warps of a warpgroup run apart: without a barrier, one that finished its epilogue would
    // issue the next tile's cp.async into SWS / SXS while another still reads the previous tile's.
    const barrier = 'dca_named_sync(1 + cw, 128)';
    for (const out of ['bf16', 'fp32'] as const) {
      for (const bias of [true, false]) {
        const d: GemmDescriptor = { kind: 'gemm-fp8', m: 1000, n: 3072, k: 3072, bn: 192, stages: 4, groupM: 8, promote: 0, epilogue: 'scaled', bias, schedule: 'pingpong', out };
        const src = renderGemm(d).source;
        // The ping-pong tile loop's body, as rendered (the epilogue macros expanded inline).
        const body = src.slice(src.indexOf('if ((pos & 1) != cw) continue;'), src.indexOf('#undef SX'));
        const firstCopy = body.indexOf('cp.async.ca.shared.global');
        const lastRead = Math.max(...['ld.shared.v4.f32', 'ld.shared.f32', 'dca_lds_f2(SWS'].map((s) => body.lastIndexOf(s)));
        expect(firstCopy, `${out} bias ${bias}`).toBeGreaterThan(0);
        expect(lastRead, `${out} bias ${bias}`).toBeGreaterThan(firstCopy);
        expect(body.indexOf(barrier, lastRead) >= 0 || body.slice(0, firstCopy).includes(barrier), `${out} bias ${bias}`).toBe(true);
      }
    }
  });
});

describe('own FP8 GEMM bench (bench/gpu/gemm-own.ts)', () => {
  it('its default variants render for every shape it times (or skip a width that does not divide N)', () => {
    // The variants named before (f192s5 with a bf16 Y) asked for more shared memory than a CTA has.
    for (const [label, m, n, k] of SHAPES) {
      for (const v of DEFAULT_VARIANTS.split(',')) {
        const d = variant(v, m, n, k);
        if (d) expect(() => renderGemm(d), `${v} ${label}`).not.toThrow();
      }
    }
    expect(variant('q192s4', 4096, 6144, 6144)).toMatchObject({ bn: 192, stages: 4, promote: 0, schedule: 'pingpong' });
    expect(variant('p192s4x8', 4096, 6144, 6144)).toMatchObject({ bn: 192, stages: 4, promote: 8 });
    expect(variant('f256s4', 4096, 6144 + 192, 6144)).toBeUndefined();
  });
});

describe('own FP8 GEMM build', () => {
  it('builds for sm_90a with nvcc: every variant the bench times, twins too, the residual epilogue too, no spills', async () => {
    const variants: GemmDescriptor[] = [base, { ...base, bn: 192 }, { ...base, bn: 192, promote: 8 }, { ...base, out: 'fp32' }, { ...base, m: 64, n: 3072, k: 3072, bn: 192, epilogue: 'scaled', bias: true },
      { ...base, bn: 128, stages: 6, schedule: 'pingpong' }, { ...base, bn: 192, schedule: 'pingpong' }];
    // And what ownGemm renders for the models' scaled GEMMs (gemmScales "auto"): ping-pong with and without a bias, fp32 Y, promoted.
    const scaled = [[0, 'bfloat16', 'float32'], [0, 'bfloat16', 'bfloat16'], [0, 'bfloat16', undefined], [0, 'float32', 'float32'], [8, 'bfloat16', 'bfloat16']] as const;
    // With a twin (dc.GroupedGemm): Qwen-Image's 64-row text stream (bf16 bias), Flux.2's 512-row text out (no bias), unscaled.
    const twins = [ownGemm(8192, 9216, 3072, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'bfloat16' }, 264, 64)!.kernel, ownGemm(4096, 6144, 6144, 0, 'bfloat16', { xs: 'float32', ws: 'float32' }, 264, 512)!.kernel, renderGemm({ ...base, bn: 192, schedule: 'pingpong', twinM: 300 })];
    // The residual epilogue (passes/fuse-gemm-residual.ts) as the models take it: Qwen-Image's attention and MLP out with
    // their 64-row text twins (two batches, the gate a window of the modulation's output), Flux.2's single-block out (one
    // gate row) and its double blocks' image out with the 512-row text twin.
    const sc = { xs: 'float32', ws: 'float32' }, qwenGates = [{ batches: 2, rowsPerBatch: 4096, batchStride: 2217984 }, { batches: 2, rowsPerBatch: 32, batchStride: 2217984 }];
    const residual = [
      ownGemm(8192, 3072, 3072, 0, 'bfloat16', { ...sc, bias: 'bfloat16' }, 264, 64, qwenGates), ownGemm(8192, 3072, 12288, 0, 'bfloat16', { ...sc, bias: 'bfloat16' }, 264, 64, qwenGates),
      ownGemm(4608, 6144, 24576, 0, 'bfloat16', sc, 264, undefined, [{ batches: 1, rowsPerBatch: 4608, batchStride: 0 }]),
      ownGemm(4096, 6144, 6144, 0, 'bfloat16', sc, 264, 512, [{ batches: 1, rowsPerBatch: 4096, batchStride: 0 }, { batches: 1, rowsPerBatch: 512, batchStride: 0 }]),
    ].map((o) => o!.kernel);
    const kernels = [...variants.map(renderGemm), ...scaled.map(([promote, y, bias]) => ownGemm(4096, 18432, 6144, promote, y, { xs: 'float32', ws: 'float32', ...(bias ? { bias } : {}) })!.kernel), ...twins, ...residual];
    const report = await buildKernels([{ name: 'gemm_h100', source: renderUnit(kernels), hot: true }], { target: 'h100', cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = report.units[0].functions;
    for (const k of kernels) expect(functions.some((f) => f.name === k.name), k.name).toBe(true);
    expect(functions.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
  }, 300_000);
});

describe('own FP8 GEMM in the launch plan (policy gemm "own")', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'own-gemm-'));
  const policyFile = join(tmp, 'own.json');
  // The tiny models' GEMMs are a few output tiles: ownGemmMinTiles 1 routes them to the own kernel anyway.
  writeFileSync(policyFile, JSON.stringify({ gemm: 'own', ownGemmMinTiles: 1 }));
  const launchesOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { launchPlan: Launch[] }).launchPlan;

  it('the policy key: "own" (default) or "cublaslt", anything else refused', () => {
    expect(defaultPolicy('fp8').gemm).toBe('own');
    expect(loadPolicy(policyFile, 'fp8').gemm).toBe('own');
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ gemm: 'cutlass' }));
    expect(() => loadPolicy(bad, 'fp8')).toThrow(/"gemm" to be "own" or "cublaslt"/);
    expect(defaultPolicy('fp8').ownGemmMinTiles).toBeUndefined(); // the kernel's rule, OWN_GEMM_MIN_TILES
    expect(OWN_GEMM_MIN_TILES).toBe(2 * H100_SMS);
    expect(loadPolicy(policyFile, 'fp8').ownGemmMinTiles).toBe(1);
    writeFileSync(bad, JSON.stringify({ ownGemmMinTiles: 0.5 }));
    expect(() => loadPolicy(bad, 'fp8')).toThrow(/"ownGemmMinTiles" to be an integer >= 1, found 0.5/);
  });

  it('the tile order groups as few row tiles as keep a group\'s X rows within 16 MiB (at least 8, spread evenly), and the kernel takes that group', () => {
    const budget = 16 << 20;
    for (const [m, k] of [[4608, 6144], [4096, 6144], [4608, 24576], [4096, 18432], [8256, 3072], [8256, 12288], [512, 6144], [300, 3072], [128, 3072]]) {
      const rowTiles = Math.ceil(m / 128), g = groupRows(m, k), groups = Math.ceil(rowTiles / g);
      expect(g * 128 * k <= budget || g <= 8, `${m}x${k}: group ${g} of X past the budget`).toBe(true);
      // No fewer groups fit (each within the budget, or 8 rows where one row group of 8 does not fit).
      expect(groups, `${m}x${k}`).toBe(Math.ceil(rowTiles / Math.max(8, Math.floor(budget / (128 * k)))));
      // Evenly: the last group within one row tile of the others.
      expect(rowTiles - (groups - 1) * g, `${m}x${k}`).toBeGreaterThan(g - groups);
      expect(ownGemm(m, 18432, k, 0, 'bfloat16', undefined, 1)!.kernel.source).toContain(`GROUP_M = ${g};`);
    }
    // Worked: Flux.2's single blocks (36 row tiles, K 6144: 21 of 768 KB fit) take two groups of 18;
    // their output projection (K 24576: 5 fit) keeps 8; Qwen-Image's batch-2 K 3072 (65 row tiles) two of 33.
    expect([groupRows(4608, 6144), groupRows(4608, 24576), groupRows(8256, 3072)]).toEqual([18, 8, 33]);
  });

  it('ping-pong 128 x 192 tiles, 4 stages; cooperative with promotion; none under 264 output tiles or where N or K does not fit', () => {
    for (const [m, n, k] of [[4608, 55296, 6144], [4608, 6144, 24576], [512, 18432, 6144], [8192, 3072, 3072]]) {
      expect(ownGemm(m, n, k, 0)!.kernel.source, `${m}x${n}x${k}`).toMatch(/BN = 192, BK = 128, STAGES = 4[\s\S]*if \(\(pos & 1\) != cw\) continue;/);
    }
    const promoted = ownGemm(4096, 18432, 6144, 8)!.kernel.source;
    expect(promoted).toMatch(/kb % 8 != 0/);
    expect(promoted).not.toMatch(/pos & 1/);
    expect(ownGemm(64, 12288, 3072, 0)).toBeUndefined();
    // Fewer than 264 output tiles (two a CTA): thin text streams stay with cuBLASLt unless asked.
    expect(ownGemm(256, 3072, 12288, 0)).toBeUndefined();
    expect(ownGemm(300, 9216, 3072, 0)).toBeUndefined();
    expect(ownGemm(512, 6144, 6144, 0)).toBeUndefined();
    expect(ownGemm(300, 9216, 3072, 0, 'bfloat16', undefined, 1)).toBeDefined();
    expect(ownGemm(256, 128, 128, 0)).toBeUndefined();
    expect(ownGemm(256, 384, 96, 0)).toBeUndefined();
    expect(ownGemm(256, 384, 128, 0, 'float16')).toBeUndefined();
    expect(ownGemm(4096, 6144, 6144, 0)!.maps).toEqual([
      { param: 0, dtype: 'uint8', rows: 4096, cols: 6144, rowBytes: 6144, box: [128, 128] },
      { param: 1, dtype: 'uint8', rows: 6144, cols: 6144, rowBytes: 6144, box: [128, 192] },
      { param: 2, dtype: 'bfloat16', rows: 4096, cols: 6144, rowBytes: 12288, box: [64, 64] },
    ]);
  });

  it('tiny Flux.2 and Qwen-Image (ownGemmMinTiles 1): the FP8 GEMMs whose N and K fit take it (X, W, Y as tensor maps, then Y, xs, ws and the bias: gemmScales "auto" applies their scales in its epilogue), the rest stay cuBLASLt; with gemmScales "readers" the own kernel runs the deferred ones unscaled; the artifact checks accept the maps and refuse a map past its value, of another type, at a non-index parameter or twice, unaligned, or with a box the copy engine refuses', async () => {
    const readersFile = join(tmp, 'own-readers.json'), gemmScalesFile = join(tmp, 'gemm-scales.json');
    writeFileSync(readersFile, JSON.stringify({ gemm: 'own', gemmScales: 'readers', ownGemmMinTiles: 1 }));
    writeFileSync(gemmScalesFile, JSON.stringify({ gemmScales: 'gemm', gemm: 'cublaslt' }));
    for (const [m, own, deferredOwn] of [['flux2', 12, 12], ['qwen_image', 6, 6]] as const) {
      const dir = join(tmp, m);
      await compileModel({ model: join(tinyDir(m), 'model.onnx'), target: 'h100', precision: 'fp8', policy: policyFile, out: dir });
      const plan = launchesOf(dir);
      const gemms = plan.filter((l): l is Extract<Launch, { kind: 'kernel' }> => l.kind === 'kernel' && l.kernel.startsWith('gemm8_'));
      expect(gemms, m).toHaveLength(own);
      // QLinear's inputs by node, from the cuBLASLt build that keeps every GEMM's scales in the GEMM (its args: the node's inputs, then Y).
      const scaledDir = join(tmp, `${m}-gemm-scales`);
      await compileModel({ model: join(tinyDir(m), 'model.onnx'), target: 'h100', precision: 'fp8', policy: gemmScalesFile, out: scaledDir });
      const qlinears = new Map(launchesOf(scaledDir).filter((l) => l.kind === 'gemm' && l.precision === 'fp8').map((l) => [l.node, l.args.slice(0, -1).map((a) => a.value)]));
      for (const l of gemms) {
        expect(l.maps!.map((t) => t.param)).toEqual([0, 1, 2]);
        expect(l.args[2].value).toBe(l.args[3].value);
        expect(l.args[1].where).toBe('weight');
        expect(l.block).toBe(384);
        // X, W, Y, Y, then QLinear's xs, ws and bias (inputs 1, 3, 4): the scaled epilogue.
        const [x, xs, w, ws, b] = qlinears.get(l.node)!;
        expect(l.args.map((a) => a.value)).toEqual([x, w, l.node, l.node, xs, ws, ...(b ? [b] : [])]);
      }
      // No reader applies the scales of a GEMM the own kernel runs, and every other FP8 GEMM still runs through cuBLASLt, none of them one the own kernel takes.
      for (const l of plan) if (l.kind === 'gemm' && l.precision === 'fp8') expect(ownGemm(l.m, l.n, l.k, 0, 'float32', undefined, 1), `${m} ${l.node}`).toBeUndefined();
      expect(() => openArtifact(dir, { capability: [9, 0] })).not.toThrow();
      // gemmScales "readers": the deferred GEMMs the own kernel takes run it unscaled (X, W, Y, Y).
      const readers = join(tmp, `${m}-readers`);
      await compileModel({ model: join(tinyDir(m), 'model.onnx'), target: 'h100', precision: 'fp8', policy: readersFile, out: readers });
      const unscaled = launchesOf(readers).filter((l): l is Extract<Launch, { kind: 'kernel' }> => l.kind === 'kernel' && l.kernel.startsWith('gemm8_'));
      expect(unscaled, m).toHaveLength(deferredOwn);
      for (const l of unscaled) expect(l.args).toHaveLength(4);
    }
    const dir = join(tmp, 'flux2');
    const path = join(dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(path, 'utf8'));
    const l = manifest.launchPlan.find((x: Launch) => x.kind === 'kernel' && x.kernel.startsWith('gemm8_'));
    // The tiny models run in float32: Y's map is float32 (the kernel stores from registers).
    expect(l.maps[2]).toMatchObject({ dtype: 'float32', rowBytes: 4 * l.maps[2].cols });
    l.maps[2].rows += 1;
    writeFileSync(path, JSON.stringify(manifest));
    expect(() => openArtifact(dir, { capability: [9, 0] })).toThrow(/tensor map of parameter 2 of launch '[^']+': \d+ rows of \d+ float32 inside/);
    l.maps[2].rows -= 1;
    l.maps[0].dtype = 'bfloat16';
    writeFileSync(path, JSON.stringify(manifest));
    expect(() => openArtifact(dir, { capability: [9, 0] })).toThrow(/tensor map of parameter 0 of launch '[^']+': '[^']+' of bfloat16 \(the map reads bfloat16\), found float8e4m3fn/);
    l.maps[0].dtype = 'uint8';
    const refused = (edit: () => void, undo: () => void, message: RegExp) => {
      edit();
      writeFileSync(path, JSON.stringify(manifest));
      expect(() => openArtifact(dir, { capability: [9, 0] })).toThrow(message);
      undo();
    };
    // A parameter index the runtime would not match (model.ts looks maps up by number): the kernel
    // would get an 8-byte pointer where it reads a 128-byte map.
    refused(() => { l.maps[0].param = '0'; }, () => { l.maps[0].param = 0; }, /tensor map of parameter 0 of launch '[^']+' over one of its \d+ arguments \(an index\), found parameter "0"/);
    refused(() => { l.maps[1].param = 0; }, () => { l.maps[1].param = 1; }, /tensor map of parameter 0 of launch '[^']+': one map a parameter, found 2/);
    // X at an offset the copy engine refuses (16-byte alignment); a box of 8 bytes; a fractional extent.
    const x = l.args[0];
    refused(() => { x.offset += 8; }, () => { x.offset -= 8; }, /tensor map of parameter 0 of launch '[^']+': '[^']+' at a 16-byte aligned offset, found offset \d+/);
    refused(() => { l.maps[0].box = [8, 128]; }, () => { l.maps[0].box = [128, 128]; }, /tensor map of parameter 0 of launch '[^']+': a box of 32, 64 or 128 bytes x at most 256 rows, found \[8,128\]/);
    refused(() => { l.maps[1].rows -= 0.5; }, () => { l.maps[1].rows += 0.5; }, /tensor map of parameter 1 of launch '[^']+': [\d.]+ rows of \d+ uint8 inside/);
    writeFileSync(path, JSON.stringify(manifest));
    expect(() => openArtifact(dir, { capability: [9, 0] })).not.toThrow();
  }, 300_000);

  it('deferral with the own kernel\'s scales (gemmScales "auto"): a GEMM the own kernel takes is not deferred, and it still counts as a reader that cannot dequantize what it reads', () => {
    const g = runPipeline(inferTypes(importOnnx(join(tinyDir('qwen_image'), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    // A: 256 x 128 (N off 192: cuBLASLt, deferred); B: a later 256 x 384 the own kernel takes at one tile.
    const qlinear = (y: string) => g.nodes.find((n) => n.op === 'QLinear' && n.outputs[0] === y)!;
    const a = qlinear('linear_12'), b = qlinear('linear_20/fused/out');
    const own = deferDequant(g, { minTiles: 1 });
    expect(own.has('linear_12')).toBe(true);
    expect(own.has('linear_20/fused/out')).toBe(false);
    expect(deferDequant(g).has('linear_20/fused/out')).toBe(true);
    // B reads A's output as its bias (float32, as the own kernel's epilogue reads it): B's epilogue adds
    // what A wrote, so A must keep its scales (its other readers are element-wise kernels).
    const read = { ...g, nodes: g.nodes.map((n) => (n === b ? { ...n, inputs: [...n.inputs.slice(0, 4), a.outputs[0]] } : n)) };
    expect(deferDequant(read).has('linear_12')).toBe(false);
    expect(deferDequant(read, { minTiles: 1 }).has('linear_12')).toBe(false);
    expect(deferDequant(read, { minTiles: 1 }).has('linear_20/fused/out')).toBe(false);
  });

  it('b200: the policy keeps cuBLASLt (the kernel is sm_90a code)', async () => {
    const dir = join(tmp, 'flux2-b200');
    await compileModel({ model: join(tinyDir('flux2'), 'model.onnx'), target: 'b200', precision: 'fp8', policy: policyFile, out: dir, build: false });
    expect(launchesOf(dir).some((l) => l.kind === 'kernel' && l.kernel.startsWith('gemm8_'))).toBe(false);
  }, 300_000);
});

describe('kernel parameters', () => {
  it('pointers in 8-byte slots, a 128-byte tensor map in a 64-byte aligned slot, each slot addressed', () => {
    const map = Uint8Array.from({ length: 128 }, (_, i) => i);
    const p = new KernelParams([{ ptr: 0x1234 }, { bytes: map }, { ptr: 0x5678 }, { i32: -3 }]);
    const base = koffi.address(p.values);
    const offsets = [...p.pointers].map((a) => Number(a - base));
    expect(offsets).toEqual([0, 64, 192, 200]);
    expect(Number(p.pointers[1] % 64n)).toBe(0);
    expect(p.values.readBigUInt64LE(0)).toBe(0x1234n);
    expect([...p.values.subarray(64, 192)]).toEqual([...map]);
    expect(p.values.readBigUInt64LE(192)).toBe(0x5678n);
    expect(p.values.readInt32LE(200)).toBe(-3);
    // Without maps the layout is the old one: consecutive 8-byte slots.
    const q = new KernelParams([{ ptr: 1 }, { u32: 2 }, { f32: 0.5 }]);
    expect([...q.pointers].map((a) => Number(a - koffi.address(q.values)))).toEqual([0, 8, 16]);
  });
});

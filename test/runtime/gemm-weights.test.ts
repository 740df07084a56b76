/**
 * The runtime's pure planning, on the CPU: how each GEMM launch maps onto cuBLASLt (operand types,
 * weight layout, scales, bias type) from the real MLP artifacts; where weights live on the device
 * with and without weights.bin; which sections synthetic weights draw and at what scale; the
 * cuBLASLt constants checked against header text; and the driver's absence as one clear error.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import type { WeightEntry } from '../../compiler/weights-file.ts';
import type { Launch, Manifest } from '../../runtime/gpu/artifact.ts';
import { CONSTANTS, checkConstants, fastest, specFor } from '../../runtime/gpu/cublaslt.ts';
import { type Driver, getFunction, loadDriver } from '../../runtime/gpu/cuda.ts';
import { FILL_KIND, deviceLayout, syntheticFills } from '../../runtime/gpu/weights.ts';
import { MLP, writeMlp } from './mlp.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rt-plan-'));
const manifests: Record<string, Manifest> = {};

beforeAll(async () => {
  const model = await writeMlp(join(tmp, 'src'));
  for (const precision of ['fp32', 'bf16', 'fp8']) {
    await compileModel({ model, precision, out: join(tmp, precision), build: false });
    manifests[precision] = JSON.parse(readFileSync(join(tmp, precision, 'manifest.json'), 'utf8'));
  }
  const policy = join(tmp, 'fp32-accumulation.json');
  writeFileSync(policy, JSON.stringify({ accumulation: 'fp32' }));
  await compileModel({ model, precision: 'fp8', policy, out: join(tmp, 'fp8-promoted'), build: false });
  manifests['fp8-promoted'] = JSON.parse(readFileSync(join(tmp, 'fp8-promoted', 'manifest.json'), 'utf8'));
}, 60_000);

const gemmsOf = (m: Manifest) => {
  const byValue = new Map<string, WeightEntry>();
  for (const t of m.weights.tensors) { byValue.set(t.name, t); if (t.scale) byValue.set(t.scale, t); }
  return m.launchPlan.filter((l): l is Extract<Launch, { kind: 'gemm' }> => l.kind === 'gemm').map((l) => specFor(l, m.values, (v) => byValue.get(v)));
};

describe('GEMM specs', () => {
  it('fp32: both stored layouts of a high-precision weight, fp32 bias', () => {
    const [first, second] = gemmsOf(manifests.fp32);
    expect(first).toMatchObject({ precision: 'high', m: MLP.tokens, n: MLP.hidden, k: MLP.width, x: 'h', w: 'w1', y: 'ab', bias: 'b1', layout: 'kn', xType: 'float32', wType: 'float32', yType: 'float32', biasType: 'float32' });
    expect(second).toMatchObject({ m: MLP.tokens, n: MLP.width, k: MLP.hidden, w: 'w2', layout: 'nk', bias: 'b2' });
  });

  it('fp8: e4m3 operands, per-token and per-channel scales; unscaled where the readers dequantize, else a bf16 bias converted from fp32', () => {
    const [first, second] = gemmsOf(manifests.fp8);
    // 'ab' is read only by the GELU kernel, which applies xs, ws and the bias (compiler/codegen/dequant.ts).
    expect(first).toMatchObject({ precision: 'fp8', unscaled: true, x: 'ab/xq', xs: 'ab/xs', w: 'ab/wq', ws: 'ab/ws', layout: 'nk', xType: 'float8e4m3fn', wType: 'float8e4m3fn', yType: 'float32' });
    expect(first.bias).toBeUndefined();
    // 'o' feeds the residual Add: deferred too; the Add applies xs, ws and b2.
    expect(second).toMatchObject({ n: MLP.width, k: MLP.hidden, layout: 'nk', unscaled: true });
    expect(second.bias).toBeUndefined();
    const scaled = structuredClone(manifests.fp8);
    const gemm = scaled.launchPlan.find((l) => l.kind === 'gemm') as Extract<Launch, { kind: 'gemm' }>;
    delete gemm.unscaled;
    expect(gemmsOf(scaled)[0]).toMatchObject({ bias: 'b1', biasType: 'bfloat16', biasStoredType: 'float32' });
    expect(gemmsOf(scaled)[0].unscaled).toBeUndefined();
    const bf16 = structuredClone(manifests.bf16);
    Object.assign(bf16.launchPlan.find((l) => l.kind === 'gemm')!, { unscaled: true });
    expect(() => gemmsOf(bf16)).toThrow(/GEMM 'ab': expected an unscaled GEMM of precision fp8, found bf16/);
  });

  it('fp8: fast accumulation by default, promoted to fp32 when the policy says accumulation "fp32"; only fp8 GEMMs take it', () => {
    expect(gemmsOf(manifests.fp8).map((g) => g.fastAccum)).toEqual([true, true]);
    expect(gemmsOf(manifests['fp8-promoted']).map((g) => g.fastAccum)).toEqual([undefined, undefined]);
    expect(gemmsOf(manifests.bf16).map((g) => g.fastAccum)).toEqual([undefined, undefined]);
    const bf16 = structuredClone(manifests.bf16);
    Object.assign(bf16.launchPlan.find((l) => l.kind === 'gemm')!, { fastAccum: true });
    expect(() => gemmsOf(bf16)).toThrow(/GEMM 'ab': expected fast accumulation on a GEMM of precision fp8, found bf16/);
  });

  it('bf16: bf16 operands stored [N, K], scales unused', () => {
    const [first] = gemmsOf(manifests.bf16);
    expect(first).toMatchObject({ precision: 'bf16', layout: 'nk', xType: 'bfloat16', wType: 'bfloat16', yType: 'float32', biasType: 'float32' });
    expect(first.xs).toBeUndefined();
  });

  it('rejects a GEMM whose operands disagree with its shape, and nvfp4', () => {
    const m = structuredClone(manifests.fp8);
    const gemm = m.launchPlan.find((l) => l.kind === 'gemm') as Extract<Launch, { kind: 'gemm' }>;
    gemm.k = 128;
    expect(() => gemmsOf(m)).toThrow(/GEMM 'ab': expected X \[64, 128\].*found X \[64,256\]/);
    gemm.precision = 'nvfp4';
    expect(() => gemmsOf(m)).toThrow(/nvfp4 \(the B200 path is not implemented yet\)/);
  });
});

describe('device weight layout and synthetic weights', () => {
  it('with weights.bin the device copy is the file; without, sections are placed by kind, 256-byte aligned', () => {
    const tensors = manifests.fp8.weights.tensors;
    const file = deviceLayout(tensors, 4096);
    expect(file.bytes).toBe(4096);
    expect(file.sections.get('ab/wq')).toBe(tensors.find((t) => t.name === 'ab/wq')!.sections);
    const placed = deviceLayout(tensors, null);
    const wq = placed.sections.get('ab/wq')!;
    expect(wq.codes).toEqual({ offset: expect.any(Number), length: MLP.hidden * MLP.width });
    expect(wq.scales.length).toBe(4 * MLP.hidden);
    const all = [...placed.sections.values()].flatMap((s) => Object.values(s)).sort((a, b) => a.offset - b.offset);
    all.forEach((s, i) => {
      expect(s.offset % 256).toBe(0);
      if (i) expect(s.offset).toBeGreaterThanOrEqual(all[i - 1].offset + all[i - 1].length);
    });
    expect(placed.bytes).toBeGreaterThanOrEqual(all.at(-1)!.offset + all.at(-1)!.length);
  });

  it('draws learned weights (and ones without bytes) with their dtype and a scale that keeps variance 1/K', () => {
    const tensors: WeightEntry[] = [
      { name: 'blocks.0.w/wq', kind: 'fp8', dtype: 'bfloat16', shape: [512, 256], sections: {}, learned: true, scale: 'blocks.0.w/ws', layout: 'nk' },
      { name: 'blocks.0.proj', kind: 'raw', dtype: 'bfloat16', shape: [256, 1024], sections: {}, learned: true },
      { name: 'blocks.0.norm_q.weight', kind: 'raw', dtype: 'float32', shape: [128], sections: {}, learned: true },
      { name: 'blocks.0.bias', kind: 'raw', dtype: 'bfloat16', shape: [512], sections: {}, learned: true },
      { name: 'shape_vector', kind: 'raw', dtype: 'int64', shape: [4], sections: {}, learned: false, data: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' },
      { name: 'ids', kind: 'raw', dtype: 'int64', shape: [4], sections: {}, learned: true },
    ];
    const layout = deviceLayout(tensors, null);
    const fills = syntheticFills(tensors, layout, 42, null, (n) => (n === 'blocks.0.proj' ? 1024 : undefined));
    const by = (entry: string, section: string) => fills.find((f) => f.entry === entry && f.section === section)!;
    expect(by('blocks.0.w/wq', 'codes')).toMatchObject({ count: 512 * 256, kind: FILL_KIND.float8e4m3fn, scale: 448, offset0: 0 });
    expect(by('blocks.0.w/wq', 'scales').offset0).toBeCloseTo(Math.sqrt(3 / 256) / 448, 12);
    expect(by('blocks.0.proj', 'data')).toMatchObject({ kind: FILL_KIND.bfloat16, scale: Math.sqrt(3 / 1024) });
    expect(by('blocks.0.norm_q.weight', 'data')).toMatchObject({ kind: FILL_KIND.float32, scale: 0.1, offset0: 1 });
    expect(by('blocks.0.bias', 'data')).toMatchObject({ scale: 0.02, offset0: 0 });
    expect(by('ids', 'data')).toMatchObject({ kind: 4, count: 32 });
    expect(fills.some((f) => f.entry === 'shape_vector')).toBe(false); // inline values keep their bytes
    expect(new Set(fills.map((f) => f.seed)).size).toBe(fills.length); // a seed per section
    expect(syntheticFills(tensors, layout, 43, null, () => undefined)[0].seed).not.toBe(fills[0].seed);
  });
});

describe('bindings', () => {
  it('checks the cuBLASLt constants against header text', () => {
    const header = Object.entries(CONSTANTS).map(([k, v]) => `    ${k} = ${v},`).join('\n');
    expect(checkConstants(header)).toEqual([]);
    const wrong = header.replace('CUBLASLT_MATMUL_DESC_A_SCALE_MODE = 31', 'CUBLASLT_MATMUL_DESC_A_SCALE_MODE = 30').replace(/\n.*CUDA_R_16BF.*\n/, '\n');
    expect(checkConstants(wrong)).toEqual(['CUDA_R_16BF: not found', 'CUBLASLT_MATMUL_DESC_A_SCALE_MODE: header 30, runtime 31']);
  });

  const hasDriver = (() => { try { koffi.load('libcuda.so.1'); return true; } catch { return false; } })();
  it.skipIf(hasDriver)('a machine without the driver gets "no CUDA driver (libcuda.so.1)" (skipped where a driver exists)', () => {
    expect(() => loadDriver()).toThrow(/^libcuda\.so\.1: expected the NVIDIA CUDA driver, found no CUDA driver \(libcuda\.so\.1\)/);
    expect(existsSync('/proc/driver/nvidia/version')).toBe(false);
  });
});

// Regression, was a bug (cuda.ts getFunction): only dynamic shared memory above 48 KB was declared
// to the driver, so a row kernel with a 48 KB ring plus 256 static bytes failed to launch
// (CUDA_ERROR_INVALID_VALUE) in the full Flux.2 transformer on the H100.
describe('kernel functions declare their dynamic shared memory', () => {
  const declared = (sharedBytes: number) => {
    const calls: unknown[][] = [];
    const driver = { out: () => 7n, call: (...args: unknown[]) => { calls.push(args); } } as unknown as Driver;
    expect(getFunction(driver, 3n, 'kernel', sharedBytes)).toBe(7n);
    return calls.filter((c) => c[0] === 'cuFuncSetAttribute').map((c) => c[3]);
  };
  it('any size, 48 KB exactly included; none when a kernel uses no dynamic shared memory', () => {
    expect(declared(49152)).toEqual([49152]);
    expect(declared(20480)).toEqual([20480]);
    expect(declared(196608)).toEqual([196608]);
    expect(declared(0)).toEqual([]);
  });
});

describe('GEMM tuning: which timed algorithm is kept (cublaslt.ts fastest)', () => {
  it('the fastest that ran; the heuristic\'s order breaks ties; refused ones (Infinity) never win', () => {
    expect(fastest([1.2, 0.9, 1.0], 'g')).toBe(1);
    expect(fastest([0.9, 0.9, 1.0], 'g')).toBe(0);
    expect(fastest([Infinity, 1.5, 1.1], 'g')).toBe(2);
    expect(fastest([1.0], 'g')).toBe(0);
  });
  it('times within 3% of the fastest are ties: the heuristic\'s order keeps the earliest, so timing noise does not choose how a GEMM rounds', () => {
    expect(fastest([1.0, 0.98], 'g')).toBe(0);
    expect(fastest([1.0, 0.96], 'g')).toBe(1);
    expect(fastest([1.0, 0.95, 0.951, 0.94], 'g')).toBe(1);
    expect(fastest([Infinity, 1.0, 0.99], 'g')).toBe(1);
    expect(fastest([1.0, 0.98], 'g', 0)).toBe(1);
  });
  it('none ran: an error naming the shape', () => {
    expect(() => fastest([Infinity, Infinity], 'GEMM shape fp8 4096 6144 6144')).toThrow(/GEMM shape fp8 4096 6144 6144: expected an algorithm that runs, found none of 2 did/);
  });
});

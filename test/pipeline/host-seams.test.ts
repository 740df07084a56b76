/**
 * The host-side fast paths of a request (issue 9) give the values the plain paths give:
 *   - bf16.ts: f32ToBf16Array = dtype.ts f32ToBf16 per value, decodeBf16 = bf16ToF32 per value (odd
 *     lengths, unaligned views), a bits tensor stages to the bytes the decoded values would
 *     (NaN payloads canonical), valuesOf decodes it;
 *   - runtime/gpu/model.ts hostIo: with bf16Bits the outputs are the decoded outputs' bits, and a
 *     bits output passed on as an input (or a row view of one) stages the same device bytes; an
 *     output left on the device (device-output.ts) is copied there into the next module and read on
 *     the host only when read, and throws once its memory is written again;
 *   - image.ts: toRgb8Bits (table) = toRgb8 (float path) on every bfloat16 value, rgb8Of = the
 *     reference formula with Math.round + tie fix-up on every float32 step around the ties;
 *   - the families' unpackForVae = fromTokens -> (BN | unpatchify) -> (unpatchify | denormalize);
 *   - eulerStep's `staged` bits = f32ToBf16Array of the latents it leaves;
 *   - both full-size pipelines through gpuExecutorFactory: modules returning bits with the latents
 *     staged by the Euler step (and Flux.2's prompt embeddings left on the device), and modules
 *     returning decoded floats fed float32 latents, give the same bytes at every module input and
 *     the same RGB8.
 */
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { bitsOf, bitsTensor, canonicalNaNs, decodeBf16, f32ToBf16Array, isBits, valuesOf } from '../../runtime/executor/bf16.ts';
import { gpuExecutorFactory, type GpuLoadOptions, parseValueType, placeholders } from '../../runtime/executor/gpu.ts';
import { type DeviceCopies, type HostIo, deviceBytes, hostIo } from '../../runtime/gpu/model.ts';
import { type OutputLedger, claimReplica, deviceSourceOf, replicaSource } from '../../runtime/gpu/device-output.ts';
import { rgb8, rgb8Of, rgb8Table, toRgb8, toRgb8Bits } from '../../runtime/pipeline/image.ts';
import { fromTokens, unpatchify } from '../../runtime/pipeline/latents.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';
import { eulerStep, flowMatchSchedule } from '../../runtime/pipeline/flow_match.ts';
import { bnDenormalize, unpackForVae as fluxUnpack } from '../../models/flux2/latents.ts';
import { LATENTS_MEAN, LATENTS_STD, denormalize, unpackForVae as qwenUnpack } from '../../models/qwen_image/latents.ts';
import { FULL_IO, fakeManifest, fakeModule } from '../../bench/host-overhead.ts';
import { ROLES, type Role } from '../../runtime/pipeline/manifest.ts';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const f = Math.fround;
const u16 = (b: Uint8Array) => Array.from(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));

/** Every bfloat16 bit pattern. */
const ALL_BF16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

describe('bfloat16 conversions (runtime/executor/bf16.ts)', () => {
  it('f32ToBf16Array = f32ToBf16 per value, odd lengths included', () => {
    const special = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -9, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 1e-40, -1e-45, 65504, 0.1];
    const x = new Float32Array(special.length + 1001);
    x.set(special);
    x[special.length] = new Float32Array(new Uint32Array([0xffc00001]).buffer)[0]; // a negative NaN with a payload
    let s = 3;
    for (let i = special.length + 1; i < x.length; i++) x[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 ** ((i % 60) - 30);
    expect(x.length % 2).toBe(1);
    expect(Array.from(f32ToBf16Array(x))).toEqual(Array.from(x, f32ToBf16));
    expect(Array.from(f32ToBf16Array(x.subarray(1, 8)))).toEqual(Array.from(x.subarray(1, 8), f32ToBf16)); // an unaligned-length view
  });

  it('decodeBf16 = bf16ToF32 on all 65536 patterns, aligned, unaligned and odd', () => {
    const want = Array.from(ALL_BF16, (b) => new Uint32Array(Float32Array.of(bf16ToF32(b)).buffer)[0]);
    const bitsOfDecoded = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    expect(bitsOfDecoded(decodeBf16(ALL_BF16))).toEqual(want.map((_, i) => ALL_BF16[i] << 16 >>> 0));
    expect(bitsOfDecoded(decodeBf16(ALL_BF16.subarray(1, 6)))).toEqual([1, 2, 3, 4, 5].map((b) => (b << 16) >>> 0));
    expect(bitsOfDecoded(decodeBf16(ALL_BF16.subarray(2, 9)))).toEqual([2, 3, 4, 5, 6, 7, 8].map((b) => (b << 16) >>> 0));
  });

  it('a bits tensor stages to exactly the bytes its decoded values would, every NaN as 0x7fc0', () => {
    const t = bitsTensor([65536], ALL_BF16);
    expect(isBits(t)).toBe(true);
    expect(isBits(new Tensor('bfloat16', [1], Float32Array.of(1)))).toBe(false);
    const slow = f32ToBf16Array(decodeBf16(ALL_BF16));
    expect(Array.from(bitsOf(t))).toEqual(Array.from(slow));
    expect(u16(deviceBytes(t, 'bfloat16'))).toEqual(Array.from(slow));
    expect(u16(deviceBytes(new Tensor('float32', [65536], decodeBf16(ALL_BF16)), 'bfloat16'))).toEqual(Array.from(slow));
    // No NaN: the bits themselves, not a copy; odd and unaligned views too.
    const clean = Uint16Array.of(0x3f80, 0xbf80, 0x0000, 0x8000, 0x7f80, 0xff80, 0x0001);
    expect(canonicalNaNs(clean)).toBe(clean);
    const nan = Uint16Array.of(1, 0xffc1, 0x7f81, 0x7fc0, 5);
    expect(Array.from(canonicalNaNs(nan.subarray(1)))).toEqual([0x7fc0, 0x7fc0, 0x7fc0, 5]);
    expect(Array.from(nan)).toEqual([1, 0xffc1, 0x7f81, 0x7fc0, 5]); // the input is left alone
    // One NaN at every position of a longer array (the scan takes four words per step, then the rest).
    for (let at = 0; at < 21; at++) {
      const one = new Uint16Array(21).fill(0x3f80);
      one[at] = 0x7f90;
      const fixed = canonicalNaNs(one);
      expect(fixed, `NaN at ${at}`).not.toBe(one);
      expect(Array.from(fixed)).toEqual(Array.from(one, (v, k) => (k === at ? 0x7fc0 : v)));
    }
    expect(Array.from(valuesOf(t).subarray(0x3f80, 0x3f82))).toEqual([1, bf16ToF32(0x3f81)]);
  });
});

describe('hostIo (runtime/gpu/model.ts run without the device)', () => {
  const io = {
    inputs: [{ name: 'x', dtype: 'bfloat16' as const, shape: [2, 3], offset: 0, bytes: 12 }, { name: 'ids', dtype: 'int64' as const, shape: [2], offset: 16, bytes: 16 }],
    outputs: [{ name: 'y', dtype: 'bfloat16' as const, shape: [2, 3], offset: 32, bytes: 12 }],
  };
  const device = (arena: Uint8Array, uploads: string[]) => ({
    toDevice: (o: number, b: Uint8Array) => { uploads.push(`${o}:${b.length}`); arena.set(b, o); },
    execute: () => arena.set(arena.subarray(0, 12), 32), // y = x
    fromDevice: (o: number, into: Uint8Array) => into.set(arena.subarray(o, o + into.length)),
  });

  it('decoded and bits outputs hold the same values; passed back, both stage the same bytes', () => {
    const xs = Float32Array.of(1, -2.5, 1e-3, NaN, 3.1415927, -0);
    const ids = new Tensor('int64', [2], BigInt64Array.of(7n, 9n));
    const plainArena = new Uint8Array(48), bitsArena = new Uint8Array(48);
    const plain = hostIo(io, new Set(['x', 'ids']), device(plainArena, []));
    const bits = hostIo(io, new Set(['x', 'ids']), device(bitsArena, []), { bf16Bits: true });
    const a = plain.run({ x: new Tensor('float32', [2, 3], xs), ids }).y;
    const b = bits.run({ x: new Tensor('float32', [2, 3], xs), ids }).y;
    expect(a.dtype).toBe('bfloat16');
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(isBits(b)).toBe(true);
    expect(Array.from(valuesOf(b))).toEqual(Array.from(a.data as Float32Array));
    expect(Array.from(a.data as Float32Array).map(f32ToBf16)).toEqual(Array.from(xs, f32ToBf16));
    // Round two: the output goes back in (bits tensor vs decoded float tensor): the same device bytes.
    plain.run({ x: new Tensor('float32', [2, 3], a.data as Float32Array), ids });
    bits.run({ x: b, ids });
    expect(Buffer.from(bitsArena).equals(Buffer.from(plainArena))).toBe(true);
    // A row view of a bits output stages that row's bits.
    const row = bitsTensor([3], (b.data as Uint16Array).subarray(3));
    expect(u16(deviceBytes(row, 'bfloat16'))).toEqual(Array.from(xs.subarray(3), f32ToBf16));
  });

  it('an intact input passed again as the same Tensor is not uploaded again', () => {
    const uploads: string[] = [];
    const host = hostIo(io, new Set(['x', 'ids']), device(new Uint8Array(48), uploads), { bf16Bits: true });
    const x = new Tensor('float32', [2, 3], new Float32Array(6).fill(1));
    const ids = new Tensor('int64', [2], new BigInt64Array(2));
    host.run({ x, ids });
    host.run({ x, ids });
    host.run({ x: new Tensor('float32', [2, 3], new Float32Array(6)), ids });
    expect(uploads).toEqual(['0:12', '16:16', '0:12']);
  });

  it('two models in one arena (ArenaShare): after the other ran there, an intact input is staged again, and the outputs are each model\'s own', () => {
    // Model B's plan writes its output over A's input x (bytes 0-11): its own input ids2 sits at 40.
    const ioB = {
      inputs: [{ name: 'ids2', dtype: 'int64' as const, shape: [1], offset: 40, bytes: 8 }],
      outputs: [{ name: 'z', dtype: 'int64' as const, shape: [1], offset: 0, bytes: 8 }],
    };
    const arena = new Uint8Array(48), uploads: string[] = [];
    const holders: (HostIo | null)[] = [null];
    const a = hostIo(io, new Set(['x', 'ids']), device(arena, uploads), { bf16Bits: true, arena: { holders, replica: 0 } });
    const b = hostIo(ioB, new Set(['ids2']), {
      toDevice: (o, bytes) => { uploads.push(`B ${o}:${bytes.length}`); arena.set(bytes, o); },
      execute: () => arena.set(arena.subarray(40, 48), 0), // z = ids2, over A's x
      fromDevice: (o, into) => into.set(arena.subarray(o, o + into.length)),
    }, { arena: { holders, replica: 0 } });
    const x = new Tensor('float32', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
    const ids = new Tensor('int64', [2], new BigInt64Array(2));
    const first = Array.from(valuesOf(a.run({ x, ids }).y));
    expect(first).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(b.run({ ids2: new Tensor('int64', [1], BigInt64Array.of(-1n)) }).z.data as BigInt64Array)).toEqual([-1n]);
    expect(holders[0]).toBe(b);
    // A again with the same Tensors: without the share it would skip x and read B's bytes.
    expect(Array.from(valuesOf(a.run({ x, ids }).y))).toEqual(first);
    a.run({ x, ids }); // A's own run since: nothing staged
    expect(uploads).toEqual(['0:12', '16:16', 'B 40:8', '0:12', '16:16']);
  });
});

describe('outputs left on the device (runtime/gpu/device-output.ts, hostIo collect onDevice)', () => {
  // Two modules in one stand-in device memory: the producer's arena at 0x1000, the consumer's at 0x2000.
  const io = { inputs: [{ name: 'ids', dtype: 'int64' as const, shape: [2], offset: 0, bytes: 16 }], outputs: [{ name: 'e', dtype: 'bfloat16' as const, shape: [2, 3], offset: 16, bytes: 12 }] };
  const ioC = { inputs: [{ name: 'x', dtype: 'bfloat16' as const, shape: [2, 3], offset: 0, bytes: 12 }], outputs: [{ name: 'y', dtype: 'bfloat16' as const, shape: [2, 3], offset: 16, bytes: 12 }] };
  function setup() {
    const memory = new Map([[0x1000, new Uint8Array(32)], [0x2000, new Uint8Array(32)]]);
    const log: string[] = [];
    const driver = { call: (fn: string, ...a: unknown[]) => { log.push(`${fn} ${a.filter((x) => typeof x === 'bigint').join(' ')}`); } };
    let events = 0n;
    const device = (base: number, name: string, execute: (arena: Uint8Array) => void) => {
      const arena = memory.get(base)!, ledger: OutputLedger = { generation: [0], reads: [[]] };
      const copies: DeviceCopies = {
        toDevice: (o, b) => { log.push(`${name} upload ${o}:${b.length}`); arena.set(b, o); },
        execute: () => execute(arena),
        fromDevice: (o, into) => { log.push(`${name} read ${o}:${into.length}`); into.set(arena.subarray(o, o + into.length)); },
        claim: () => claimReplica(driver, ledger, 0, BigInt(base)),
        copyFrom: (o, src) => {
          const [from, bytes] = [...memory].find(([b, m]) => src.ptr >= b && src.ptr < b + m.length)!;
          log.push(`${name} copy on the device ${src.ptr.toString(16)} -> ${o}:${src.bytes}`);
          arena.set(bytes.subarray(src.ptr - from, src.ptr - from + src.bytes), o);
          src.readBy(++events);
          return true;
        },
        source: (o, bytes) => replicaSource(ledger, 0, 0, base + o, bytes, () => true),
      };
      return copies;
    };
    // The producer writes e = ids[0], ids[1], 0x3f80, 0x4000, ... as bf16 bits; the consumer copies x to y.
    const producerDevice = device(0x1000, 'P', (a) => {
      const ids = new BigInt64Array(a.buffer.slice(0, 16));
      new Uint16Array(a.buffer, 16, 6).set([Number(ids[0]), Number(ids[1]), 0x3f80, 0x4000, 0x4040, 0x4080]);
    });
    const producer = hostIo(io, new Set(['ids']), producerDevice, { bf16Bits: true });
    const consumer = hostIo(ioC, new Set(['x']), device(0x2000, 'C', (a) => a.copyWithin(16, 0, 12)), { bf16Bits: true });
    // A producer run whose output e is left on the device (or not): stage, the plan, collect.
    const produce = (a: bigint, b: bigint, onDevice = true) => {
      producer.stage({ ids: new Tensor('int64', [2], BigInt64Array.of(a, b)) });
      producerDevice.execute();
      return producer.collect({ onDevice }).e;
    };
    return { log, consumer, produce };
  }

  it('staged into another module: copied on the device, never read on the host; read later, the same values', () => {
    const { log, consumer, produce } = setup();
    const e = produce(0x3f00n, 0xbf00n);
    expect(e.shape).toEqual([2, 3]);
    expect(deviceSourceOf(e)).toMatchObject({ ptr: 0x1000 + 16, bytes: 12 });
    const y = consumer.run({ x: e }).y;
    expect(log.filter((l) => / (upload|read|copy)/.test(l))).toEqual(['P upload 0:16', 'C copy on the device 1010 -> 0:12', 'C read 16:12']);
    expect(Array.from(valuesOf(y))).toEqual([0.5, -0.5, 1, 2, 3, 4]);
    // The consumer's copy is waited for before the producer writes its memory again.
    expect(Array.from(valuesOf(e))).toEqual([0.5, -0.5, 1, 2, 3, 4]); // read now: one copy to the host
    expect(deviceSourceOf(e)).toBeUndefined();
    produce(1n, 2n);
    expect(log.slice(-4)).toEqual(['P read 16:12', 'cuStreamWaitEvent 4096 1', 'cuEventDestroy 1', 'P upload 0:16']);
    // Already on the host: staged from there, not from the rewritten slot.
    consumer.run({ x: bitsTensor([2, 3], new Uint16Array(6)) });
    expect(Array.from(valuesOf(consumer.run({ x: e }).y))).toEqual([0.5, -0.5, 1, 2, 3, 4]);
    expect(log.at(-2)).toBe('C upload 0:12');
  });

  it('an output left on the device and not read before its module runs again: reading or staging it throws, naming it', () => {
    const { consumer, produce } = setup();
    const e = produce(1n, 2n);
    produce(3n, 4n); // the next run claims the memory
    expect(() => valuesOf(e)).toThrow(/output 'e': expected its values still on the device .*found that memory written by a later run/);
    expect(() => consumer.run({ x: e })).toThrow(/output 'e'/);
    // Without onDevice (the default) the outputs are on the host at once.
    const host = produce(5n, 6n, false);
    expect(deviceSourceOf(host)).toBeUndefined();
    produce(7n, 8n);
    expect(Array.from(bitsOf(host)).slice(0, 2)).toEqual([5, 6]);
  });
});

describe('Euler step with the next input staged (runtime/pipeline/flow_match.ts)', () => {
  it('the same latents as the plain step, and their f32ToBf16 bits; decoding into a reused buffer', () => {
    const schedule = flowMatchSchedule(4, { mu: 1.1 });
    const v = new GaussianNoise(1).fill(1001);
    v[3] = NaN; v[4] = Infinity;
    const a = new GaussianNoise(2).fill(1001), b = Float32Array.from(a);
    const staged = new Uint16Array(1001);
    eulerStep(a, v, schedule, 1);
    eulerStep(b, v, schedule, 1, staged);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(Array.from(staged)).toEqual(Array.from(f32ToBf16Array(a)));
    expect(bitsOf(bitsTensor([1001], staged, true))).toBe(staged); // vouched canonical: staged as they are, no scan
    expect(() => eulerStep(b, v, schedule, 1, new Uint16Array(3))).toThrow(/3 staged values for 1001 latents/);
    const scratch = new Float32Array(1001);
    expect(valuesOf(bitsTensor([1001], staged), scratch)).toBe(scratch);
    expect(Array.from(scratch)).toEqual(Array.from(staged, bf16ToF32));
  });
});

describe('RGB8 (runtime/pipeline/image.ts)', () => {
  /** The reference: clamp, f32(v*255), Math.round with the tie of an odd result taken back down. */
  const reference = (x: number) => {
    let v = f(f(x * 0.5) + 0.5);
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    const y = f(v * 255);
    const r = Math.round(y);
    return Number.isNaN(r) ? 0 : r - y === 0.5 && (r & 1) ? r - 1 : r;
  };

  it('rgb8Of = the reference on every bfloat16 value and on float32 values at and beside every tie', () => {
    const values = Array.from(decodeBf16(ALL_BF16));
    for (let k = 0; k <= 255; k++) {
      // x such that f32(f32(x*0.5)+0.5)*255 lands on k + 0.5 and its float32 neighbours.
      const v = f((k + 0.5) / 255);
      for (const d of [-2, -1, 0, 1, 2]) {
        const vv = new Float32Array(new Uint32Array([new Uint32Array(Float32Array.of(v).buffer)[0] + d]).buffer)[0];
        values.push(f((vv - 0.5) * 2), vv * 2 - 1);
      }
    }
    const u8 = (v: number) => Uint8Array.of(v)[0]; // as toRgb8 stores it (NaN -> 0)
    for (const x of values) expect(u8(rgb8Of(x))).toBe(reference(x));
    expect(Array.from(rgb8Table())).toEqual(Array.from(decodeBf16(ALL_BF16), reference));
  });

  it('toRgb8Bits (table) = toRgb8 of the decoded values; rgb8 picks by the tensor', () => {
    const H = 64, W = 48;
    const bits = new Uint16Array(3 * H * W);
    let s = 9;
    for (let i = 0; i < bits.length; i++) bits[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 16;
    bits.set([0x7fc1, 0xffc0, 0x7f80, 0xff80, 0x8000], 10);
    const byFloat = toRgb8(decodeBf16(bits), H, W);
    expect(Buffer.from(toRgb8Bits(bits, H, W)).equals(Buffer.from(byFloat))).toBe(true);
    expect(Buffer.from(rgb8(bitsTensor([1, 3, H, W], bits), H, W)).equals(Buffer.from(byFloat))).toBe(true);
    expect(Buffer.from(rgb8(new Tensor('float32', [1, 3, H, W], decodeBf16(bits)), H, W)).equals(Buffer.from(byFloat))).toBe(true);
    expect(() => toRgb8Bits(bits.subarray(1), H, W)).toThrow(/expected 9216 values/);
    // The byte-wise path (odd plane, unaligned bits) gives the same as the float path too.
    const odd = Uint16Array.from({ length: 3 * 5 * 7 + 1 }, (_, i) => (i * 2654435761) >>> 16).subarray(1);
    expect(Buffer.from(toRgb8Bits(odd, 5, 7)).equals(Buffer.from(toRgb8(decodeBf16(odd), 5, 7)))).toBe(true);
  });
});

describe('one-pass VAE inputs = the step-by-step layouts', () => {
  it('Flux.2: fromTokens -> bnDenormalize -> unpatchify', () => {
    const h = 6, w = 10, K = 128;
    const tokens = new GaussianNoise(5).fill(h * w * K);
    const bn = { mean: new GaussianNoise(6).fill(K), variance: Float32Array.from(new GaussianNoise(7).fill(K), (v) => v * v + 0.01), eps: 1e-4 };
    const z = fromTokens(tokens, { channels: K, height: h, width: w });
    bnDenormalize(z, K, h * w, bn);
    const want = unpatchify(z, { channels: 32, height: 2 * h, width: 2 * w });
    expect(Buffer.from(fluxUnpack(tokens, h, w, bn).buffer).equals(Buffer.from(want.buffer))).toBe(true);
    expect(() => fluxUnpack(tokens.subarray(1), h, w, bn)).toThrow(/expected 7680 values/);
  });

  it('Qwen-Image: fromTokens -> unpatchify -> denormalize', () => {
    const h = 4, w = 8, K = 64;
    const tokens = new GaussianNoise(8).fill(h * w * K);
    const mean = Float32Array.from(LATENTS_MEAN), std = Float32Array.from(LATENTS_STD);
    const want = unpatchify(fromTokens(tokens, { channels: K, height: h, width: w }), { channels: 16, height: 2 * h, width: 2 * w });
    denormalize(want, 16, 4 * h * w, mean, std);
    expect(Buffer.from(qwenUnpack(tokens, h, w, mean, std).buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });
});

describe('full-size pipelines: bits outputs vs decoded outputs', () => {
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const parseIo = (types: Record<string, string>) => Object.entries(types).map(([n, t]) => parseValueType(n, t));

  /**
   * Runs one request; every module input's bytes at each execute, hashed, and the RGB8. `bits`:
   * the modules return bits tensors (else decoded float32); `plain`: the transformer declares its
   * latents input float32, so the pipeline passes float32 latents every step and the module's
   * staging converts them (else the Euler step writes their bfloat16 bits).
   */
  async function request(family: 'flux2' | 'qwen_image', bits: boolean, plain = false, deviceRgb8 = false) {
    const dir = mkdtempSync(join(tmpdir(), 'seams-'));
    const m = fakeManifest(family, dir);
    if (plain) {
      const file = join(m.modules!.transformer, 'manifest.json');
      const io = JSON.parse(readFileSync(file, 'utf8')) as { inputs: Record<string, string> };
      io.inputs.hidden_states = io.inputs.hidden_states.replace('bfloat16', 'float32');
      writeFileSync(file, JSON.stringify(io));
    }
    const seen: string[] = [], reads: Role[] = [];
    const roleOf = (d: string) => ROLES.find((r) => m.modules![r] === d)! as Role;
    const runtime = {
      // The bench's stand-in module (runtime/gpu/model.ts hostIo over a host buffer, outputs drawn once); `bits` overrides what the factory asks.
      loadModel: (d: string, o?: GpuLoadOptions) => {
        const module = fakeModule(roleOf(d), FULL_IO[family][roleOf(d)], new Map(), {
          ...o, bf16Bits: bits, edgeValues: true, onExecute: (role, slots) => seen.push(`${role} ${slots.map(sha).join(' ')}`), onRead: (role) => reads.push(role),
        });
        if (!deviceRgb8 || roleOf(d) !== 'vaeDecoder') return module;
        // The GPU module's rgb8 (runtime/gpu/model.ts), here the host conversion of its own output.
        return { ...module, rgb8: (x: Record<string, Tensor>) => { seen.push('rgb8'); const img = Object.values(module.run(x))[0]; return rgb8(img, img.shape.at(-2)!, img.shape.at(-1)!); } };
      },
    };
    const p = await loadPipeline(m, gpuExecutorFactory(runtime));
    const img = await p.generate({ prompt: 'a fox', size: m.sizes[0], steps: 3, guidanceScale: 4, seed: 3, ...(family === 'qwen_image' ? { negativePrompt: ' ' } : {}) });
    await p.release();
    return { seen, rgb: sha(img.rgb), reads };
  }

  for (const family of ['flux2', 'qwen_image'] as const) {
    it(`${family}: the same bytes into every module at every call, and the same RGB8`, async () => {
      const a = await request(family, true), b = await request(family, false, true);
      expect(a.seen.length).toBe(family === 'flux2' ? 1 + 3 + 1 : 2 + 6 + 1);
      if (family === 'flux2') {
        // The embeddings copied on the device keep the encoder's NaN payloads (edgeValues); staged from the host, every NaN is
        // 0x7fc0 (bitsOf). Otherwise the same bytes.
        const te = fakeModule('textEncoder', FULL_IO.flux2.textEncoder, new Map(), { bf16Bits: true, edgeValues: true });
        const raw = (await te.run(placeholders(parseIo(FULL_IO.flux2.textEncoder.inputs)))).prompt_embeds.data as Uint16Array;
        const slot = (seen: string[], hash: string) => seen.map((l) => (l.startsWith('transformer') ? l.split(' ').map((h, i) => (i === 2 ? hash : h)).join(' ') : l));
        expect(a.seen).toEqual(slot(a.seen, sha(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength))));
        const canonical = canonicalNaNs(raw);
        expect(b.seen).toEqual(slot(b.seen, sha(new Uint8Array(canonical.buffer, canonical.byteOffset, canonical.byteLength))));
        expect(slot(a.seen, '')).toEqual(slot(b.seen, ''));
      } else {
        expect(a.seen).toEqual(b.seen);
      }
      expect(a.rgb).toBe(b.rgb);
      // Flux.2's prompt embeddings (bits) go from the encoder's slot to the transformer's on the device, never read on the host.
      expect(a.reads.filter((r) => r === 'textEncoder')).toHaveLength(family === 'flux2' ? 0 : 2);
      expect(b.reads.filter((r) => r === 'textEncoder')).toHaveLength(family === 'flux2' ? 1 : 2);
      // A VAE module with rgb8 (the GPU one) decodes the whole image through it: the same calls, the same RGB8.
      const c = await request(family, true, false, true);
      expect(c.seen.filter((s) => s !== 'rgb8')).toEqual(a.seen);
      expect(c.seen.filter((s) => s === 'rgb8')).toHaveLength(1);
      expect(c.rgb).toBe(a.rgb);
    }, 60_000);
  }
});

/**
 * runtime/executor/safe_softmax.ts: which graphs it rewrites (the guarded float32.min attention
 * biases of the text encoders; not the transformers, not an unguarded Softmax), that rows with at
 * least one visible key come out bit-identical, and that a fully-masked row (a left-padded pad
 * token) then equals what eager PyTorch computes for it: the layer stack with a zero attention
 * output — checked against the same graph with every attention output projection zeroed.
 */
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { patchSafeSoftmax, rewriteSafeSoftmax } from '../../runtime/executor/safe_softmax.ts';

const { onnx } = onnxProto as unknown as { onnx: any };
const tiny = (name: string) => join(ROOT, 'models', 'tiny', name, 'model.onnx');
const decode = (path: string) => onnx.ModelProto.decode(readFileSync(path));

async function encoder(path: string, ids: BigInt64Array, mask: BigInt64Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(path);
  const out = await s.run({ input_ids: new ort.Tensor('int64', ids, [1, ids.length]), attention_mask: new ort.Tensor('int64', mask, [1, ids.length]) });
  await s.release();
  return Object.values(out)[0].data as Float32Array;
}

describe('rewriteSafeSoftmax', () => {
  it('covers every masked attention layer (text encoders, the Qwen-Image text mask), none of unmasked Flux.2', () => {
    expect(rewriteSafeSoftmax(decode(tiny('mistral_text_encoder')))).toBe(3);
    expect(rewriteSafeSoftmax(decode(tiny('qwen_text_encoder')))).toBe(3);
    expect(rewriteSafeSoftmax(decode(tiny('qwen_image')))).toBe(3);
    expect(rewriteSafeSoftmax(decode(tiny('flux2')))).toBe(0);
  });

  it('Qwen-Image with padded text (no row fully masked: image keys are always visible) is bit-identical', async () => {
    const { path } = patchSafeSoftmax(tiny('qwen_image'), mkdtempSync(join(tmpdir(), 'safe-softmax-')));
    const feeds = {
      hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 256 * 64 }, (_, i) => Math.sin(i)), [1, 256, 64]),
      encoder_hidden_states: new ort.Tensor('float32', Float32Array.from({ length: 24 * 192 }, (_, i) => Math.cos(i)), [1, 24, 192]),
      encoder_hidden_states_mask: new ort.Tensor('int64', BigInt64Array.from({ length: 24 }, (_, i) => (i < 14 ? 1n : 0n)), [1, 24]),
      timestep: new ort.Tensor('float32', Float32Array.of(0.5), [1]),
    };
    const run = async (p: string) => {
      const s = await ort.InferenceSession.create(p);
      const out = Object.values(await s.run(feeds))[0].data as Float32Array;
      await s.release();
      return out;
    };
    expect(await run(path)).toEqual(await run(tiny('qwen_image')));
  });

  it('leaves a Softmax without the IsNaN guard alone', () => {
    const m = decode(tiny('mistral_text_encoder'));
    m.graph.node = m.graph.node.filter((n: { opType: string }) => n.opType !== 'IsNaN');
    expect(rewriteSafeSoftmax(m)).toBe(0);
  });
});

describe('patched Mistral encoder', () => {
  const L = 64, pad = 2n, real = 24;
  const leftIds = BigInt64Array.from({ length: L }, (_, i) => (i < L - real ? pad : BigInt(10 + (i * 7) % 400)));
  const leftMask = BigInt64Array.from({ length: L }, (_, i) => (i < L - real ? 0n : 1n));
  const { path, rewritten } = patchSafeSoftmax(tiny('mistral_text_encoder'), mkdtempSync(join(tmpdir(), 'safe-softmax-')));

  it('loads from a cache folder; rows that see a key are bit-identical to the original graph', async () => {
    expect(rewritten).toBe(3);
    expect(path).not.toBe(tiny('mistral_text_encoder'));
    const [a, b] = await Promise.all([encoder(tiny('mistral_text_encoder'), leftIds, leftMask), encoder(path, leftIds, leftMask)]);
    expect(b.subarray((L - real) * 192)).toEqual(a.subarray((L - real) * 192));
    // ...while the original's fully-masked rows averaged every value (they differ).
    expect(b.subarray(0, 192)).not.toEqual(a.subarray(0, 192));
  });

  it('a fully-masked row equals the layer stack with a zero attention output (eager PyTorch)', async () => {
    // Reference: the original graph with every attention output projection set to zero.
    const m = decode(tiny('mistral_text_encoder'));
    const producer = new Map<string, { opType: string; input: string[]; output: string[] }>();
    for (const n of m.graph.node) for (const o of n.output) producer.set(o, n);
    const oProj = m.graph.node.filter((n: { opType: string; input: string[] }) => n.opType === 'MatMul'
      && producer.get(producer.get(n.input[0])?.input[0] ?? '')?.opType === 'Transpose'
      && producer.get(producer.get(producer.get(n.input[0])!.input[0])!.input[0])?.output[0].startsWith('scaled_dot_product_attention'))
      .map((n: { input: string[] }) => n.input[1]);
    expect(oProj).toHaveLength(3);
    for (const init of m.graph.initializer) {
      if (!oProj.includes(init.name)) continue;
      init.rawData = new Uint8Array(init.dims.reduce((a: number, d: unknown) => a * Number(d), 4));
      init.externalData = [];
      init.dataLocation = 0;
    }
    const dir = mkdtempSync(join(tmpdir(), 'zero-attn-'));
    copyFileSync(join(ROOT, 'models', 'tiny', 'mistral_text_encoder', 'model.onnx.data'), join(dir, 'model.onnx.data'));
    writeFileSync(join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    const zeroAttn = await encoder(join(dir, 'model.onnx'), leftIds, leftMask);
    const patched = await encoder(path, leftIds, leftMask);
    for (let r = 0; r < L - real; r++) {
      const got = patched.subarray(r * 192, (r + 1) * 192), want = zeroAttn.subarray(r * 192, (r + 1) * 192);
      for (let k = 0; k < 192; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(want[k])));
    }
  });
});

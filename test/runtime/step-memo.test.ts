/**
 * The step memo without a GPU: compiler/memo.ts's plan on a hand-made graph (which launches depend
 * only on the small inputs, which of their buffers the rest reads, the writers of a shared buffer
 * kept) and on the tiny Qwen-Image fixture (its modulation GEMV memoized, nothing that reads the
 * latents); runtime/gpu/memo.ts's filling and restoring launch lists and its cache's eviction, on a
 * recording stand-in driver. The GPU check (a restoring step's outputs equal the full step's bytes)
 * is `run-cli --time`'s `memo` line (bench/RESULTS.md, session 19).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import { type MemoPlan, memoPlan } from '../../compiler/memo.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { ROOT } from '../../compiler/paths.ts';
import type { MemoryPlan } from '../../passes/plan-memory.ts';
import type { Driver } from '../../runtime/gpu/cuda.ts';
import { MemoCache, memoSteps, stageLayout } from '../../runtime/gpu/memo.ts';
import { type Manifest, checkMemo } from '../../runtime/gpu/artifact.ts';

const tensor = (shape: number[]) => ({ kind: 'tensor' as const, dtype: 'float32' as const, shape });
const node = (op: string, inputs: string[], output: string): Node => ({ op, domain: '', name: output, inputs, outputs: [output], attrs: {} }) as unknown as Node;

/** timestep [1] -> t1 -> t2 -> t3; latents [1, 128] (512 bytes: not a key input) + t1 -> y1; y1 * t3 -> y2 (graph output). */
function graph(extra: Node[] = [], inPlace: Record<string, string> = {}): { g: Graph; memory: MemoryPlan; launches: { node: string; kind: string; args: { value: string }[] }[] } {
  const nodes = [
    node('Mul', ['timestep', 'w'], 't1'), node('Sin', ['t1'], 't2'), node('Mul', ['t2', 'w'], 't3'),
    node('Add', ['latents', 't1'], 'y1'), ...extra, node('Mul', ['y1', 't3'], 'y2'),
  ];
  const values = ['t1', 't2', 't3', 'y1', 'y2', ...extra.map((n) => n.outputs[0])];
  const g = {
    name: 'g', opset: 23, inputs: ['latents', 'timestep'], outputs: ['y2'], nodes, file: 'g',
    types: new Map<string, ReturnType<typeof tensor>>([['latents', tensor([1, 128])], ['timestep', tensor([1])], ['w', tensor([1])], ...values.map((v) => [v, tensor([1, 64])] as [string, ReturnType<typeof tensor>])]),
    constants: new Map(),
  } as unknown as Graph;
  const buffers = values.map((v, i) => ({ value: v, offset: 1024 * i, bytes: 256 }));
  const location = new Map(values.map((v) => [v, v]));
  for (const [v, into] of Object.entries(inPlace)) location.set(v, into); // written in place over another value's buffer
  const memory = { arenaBytes: 1 << 20, maxLiveBytes: 0, naiveBytes: 0, buffers, location, inPlace: [] } as unknown as MemoryPlan;
  return { g, memory, launches: nodes.map((n) => ({ node: n.outputs[0], kind: 'kernel', args: [...n.inputs, ...n.outputs].map((value) => ({ value })) })) };
}

describe('the memo plan (compiler/memo.ts)', () => {
  it('memoizes the launches of the timestep alone and saves the buffers the rest reads', () => {
    const { g, memory, launches } = graph();
    const plan = memoPlan(g, memory, launches)!;
    expect(plan.inputs).toEqual(['timestep']);
    expect(plan.launches).toEqual([0, 1, 2]); // t1, t2, t3; not y1 / y2 (they read the latents)
    expect(plan.values).toEqual([
      { value: 't1', offset: 0, bytes: 256, first: 0, last: 0 },
      { value: 't3', offset: 2048, bytes: 256, first: 2, last: 2 }, // t2 is read by memoized launches only
    ]);
  });

  it('keeps a memoized writer in the restoring graph where another launch writes its buffer, and saves that writer\'s inputs instead', () => {
    const { g, memory, launches } = graph([node('Neg', ['y1'], 'n1')], { n1: 't3' });
    const plan = memoPlan(g, memory, launches)!;
    expect(plan.launches).toEqual([0, 1]); // t3's writer runs in both graphs
    expect(plan.values.map((v) => v.value)).toEqual(['t1', 't2']);
  });

  it('runs every memoized writer of an in-place chain whose buffer is read between them (the restored bytes would be the last writer\'s)', () => {
    // t2 = Sigmoid(t1) written over t1's buffer after y1 = latents + t1 read it.
    const { g, memory, launches } = graph([node('Sigmoid', ['t1'], 'c1')], { c1: 't1' });
    const plan = memoPlan(g, memory, launches)!;
    expect(plan.launches).toEqual([1, 2]); // t1's two writers (0 and 4) run; t2, t3 are still restored
    expect(plan.values.map((v) => v.value)).toEqual(['t3']);
  });

  it('reads every argument of a launch, not only its node\'s inputs (a deferred GEMM\'s readers take its scales)', () => {
    const { g, memory, launches } = graph();
    launches[3].args.push({ value: 't2' }); // y1's kernel also reads t2's buffer
    expect(memoPlan(g, memory, launches)!.values.map((v) => v.value)).toEqual(['t1', 't2', 't3']);
  });

  it('gets no memo where a launch is no node\'s (its reads and writes unknown)', () => {
    const { g, memory, launches } = graph();
    expect(memoPlan(g, memory, [...launches, { node: 'grouped/b', kind: 'gemm', args: [] }])).toBeUndefined();
  });

  it('has nothing to memoize where every launch reads a large input', () => {
    const { g, memory, launches } = graph();
    const big = { ...g, types: new Map(g.types).set('timestep', tensor([1, 128])) } as unknown as Graph;
    expect(memoPlan(big, memory, launches)).toBeUndefined();
  });

  it('on the tiny Qwen-Image: the fused modulation GEMV memoized, keyed by the timestep and the text mask; no memoized launch reads the latents', async () => {
    const out = mkdtempSync(join(tmpdir(), 'memo-'));
    await compileModel({ model: join(ROOT, 'models', 'tiny', 'qwen_image', 'model.onnx'), target: 'h100', out, build: false });
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { memo: MemoPlan; launchPlan: { node: string; args: { value: string; where: string }[] }[] };
    rmSync(out, { recursive: true });
    expect(m.memo.inputs).toEqual(['encoder_hidden_states_mask', 'timestep']);
    const memoized = m.memo.launches.map((i) => m.launchPlan[i]);
    expect(memoized.map((l) => l.node)).toContain('linear_4/fused/out');
    for (const l of memoized) for (const a of l.args) if (a.where === 'input') expect(m.memo.inputs).toContain(a.value);
    expect(m.memo.values.map((v) => v.value)).toContain('linear_4/fused/out');
  });
});

/** A driver recording copies as "dst<-src bytes" and allocations / frees. */
function recorder() {
  const log: string[] = [];
  let next = 0x100000;
  const d = {
    call: (fn: string, ...a: unknown[]) => { log.push(fn === 'cuMemcpyDtoDAsync' ? `copy ${(a[0] as number).toString(16)}<-${(a[1] as number).toString(16)} ${a[2]}` : `${fn} ${(a[0] as number).toString(16)}`); },
    rc: (fn: string, box: number[]) => { box[0] = next; log.push(`alloc ${next.toString(16)}`); next += 0x100000; return 0; },
    describe: () => '',
  } as unknown as Driver;
  return { log, d };
}

describe('the step memo on the device (runtime/gpu/memo.ts)', () => {
  const plan: MemoPlan = { inputs: ['timestep'], launches: [1, 2, 4], values: [{ value: 'a', offset: 0x100, bytes: 300, first: 1, last: 2 }, { value: 'b', offset: 0x800, bytes: 64, first: 4, last: 4 }] };

  it('fills the stage after each saved buffer\'s last writer and restores it where its first writer ran, skipping the memoized launches', () => {
    const { log, d } = recorder();
    const steps = [0, 1, 2, 3, 4, 5].map((i) => () => { log.push(`s${i}`); });
    expect(stageLayout(plan)).toEqual({ bytes: 512 + 256, at: [0, 512] });
    const { fill, hit } = memoSteps(d, plan, steps, 0x10000, 0x90000);
    for (const s of fill) s(0n);
    expect(log.splice(0)).toEqual(['s0', 's1', 's2', 'copy 90000<-10100 300', 's3', 's4', 'copy 90200<-10800 64', 's5']);
    for (const s of hit) s(0n);
    expect(log).toEqual(['s0', 'copy 10100<-90000 300', 's3', 'copy 10800<-90200 64', 's5']);
  });

  it('keeps the most recently used entries within its budget, never evicting a key the request needs', () => {
    const { log, d } = recorder();
    const cache = new MemoCache(d, 3000);
    expect(cache.reserve(['a', 'b'], 1000)).toBe(true);
    const a = cache.entry('a').ptr;
    expect(cache.reserve(['c', 'd'], 1000)).toBe(true);
    expect(log).toEqual(['alloc 100000', 'alloc 200000', `cuMemFree ${a.toString(16)}`, 'alloc 300000', 'alloc 400000']);
    expect(() => cache.entry('a')).toThrow(/a reserved key/);
    cache.reserve(['b', 'e'], 1000); // b becomes the most recent: c goes
    expect(log.slice(5)).toEqual(['cuMemFree 300000', 'alloc 500000']);
    expect(cache.size).toBe(3);
    expect(cache.reserve(['w', 'x', 'y', 'z'], 1000)).toBe(false); // more keys than the budget: nothing evicted
    expect(log.length).toBe(7);
    cache.close();
    expect(log.slice(7).sort()).toEqual(['cuMemFree 200000', 'cuMemFree 400000', 'cuMemFree 500000']);
  });

  it('one budget for models of several stage sizes (a network\'s modules in one memory): the least recently used go by bytes, a key keeps its size', () => {
    const { log, d } = recorder();
    const cache = new MemoCache(d, 3000);
    expect(cache.reserve(['big|1', 'big|2'], 1200)).toBe(true); // a batch-2 module's stages
    expect(cache.reserve(['small|1'], 500)).toBe(true);
    expect(cache.heldBytes).toBe(2900);
    // 2 x 500 more: 3900 > 3000, so the oldest entry goes (1200 bytes), and that is enough.
    expect(cache.reserve(['small|2', 'small|3'], 500)).toBe(true);
    expect(log).toEqual(['alloc 100000', 'alloc 200000', 'alloc 300000', 'cuMemFree 100000', 'alloc 400000', 'alloc 500000']);
    expect(cache.heldBytes).toBe(2700);
    expect(() => cache.entry('big|1')).toThrow(/a reserved key/);
    expect(() => cache.reserve(['small|1'], 1200)).toThrow(/key 'small\|1' with entries of 500 bytes, found 1200/);
    expect(cache.reserve(['huge'], 3001)).toBe(false);
    expect(log.length).toBe(6);
  });

  it('gives back what one reserve() allocated when the device runs out, and says so', () => {
    const { log, d } = recorder();
    let left = 1;
    (d as unknown as { rc: (fn: string, box: number[]) => number }).rc = (fn, box) => { if (!left--) return 2; box[0] = 0x700000; log.push('alloc'); return 0; };
    const cache = new MemoCache(d, 3000);
    expect(cache.reserve(['a', 'b'], 1000)).toBe(false);
    expect(log).toEqual(['alloc', 'cuMemGetInfo 0', 'cuMemFree 700000']); // out of memory, alloc asks what is free for its message
    expect(cache.size).toBe(0);
  });
});

describe('a tampered memo plan is refused at load (runtime/gpu/artifact.ts checkMemo)', () => {
  const manifest = (memo: MemoPlan) => ({ launchPlan: [{}, {}, {}], io: { inputs: [{ name: 'timestep' }] }, memory: { arenaBytes: 4096 }, memo }) as unknown as Manifest;
  const good: MemoPlan = { inputs: ['timestep'], launches: [0, 1], values: [{ value: 'v', offset: 1024, bytes: 512, first: 0, last: 1 }] };
  it('accepts a consistent plan and names what is wrong in each broken one', () => {
    expect(() => checkMemo(manifest(good), 'art')).not.toThrow();
    expect(() => checkMemo(manifest({ ...good, launches: [0, 3] }), 'art')).toThrow(/art: expected a memo plan with launch indices below 3, found 3/);
    expect(() => checkMemo(manifest({ ...good, inputs: ['sigma'] }), 'art')).toThrow(/key inputs among the graph inputs, found 'sigma'/);
    expect(() => checkMemo(manifest({ ...good, values: [{ ...good.values[0], bytes: 4000 }] }), 'art')).toThrow(/saved buffers inside the 4096-byte arena, found 'v' at 1024 \(4000 bytes\)/);
    expect(() => checkMemo(manifest({ ...good, values: [{ ...good.values[0], first: 1, last: 0 }] }), 'art')).toThrow(/saved buffers between memoized writers, found 'v' from launch 1 to 0/);
  });
});

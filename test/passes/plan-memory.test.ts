/**
 * Structural tests for plan-memory (passes/plan-memory.ts) and launch accounting
 * (compiler/launches.ts): every plan, on small graphs and on the optimised tiny fixtures, is
 * checked by an independent validator (no two buffers alive at once share bytes except an in-place
 * handover, 256-byte alignment, lifetimes covering every read, arena >= max-live >= largest buffer,
 * naive >= arena, weights and load-time values outside the arena); views allocate nothing and
 * extend their base's lifetime; element-wise chains reuse memory in place.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countLaunches, loadTimeNodes } from '../../compiler/launches.ts';
import { bytesFor } from '../../compiler/ir/dtype.ts';
import type { Graph } from '../../compiler/ir/graph.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { ALIGN, type Buffer, type MemoryPlan, planMemory } from '../../passes/plan-memory.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { TINY, tinyDir } from '../helpers/fixtures.ts';
import { buildGraph, ints, randomTensor } from '../helpers/graph.ts';

const bytesOf = (g: Graph, v: string): number => {
  const t = g.types.get(v);
  return t?.kind === 'tensor' ? bytesFor(t.dtype, (t.shape as number[]).reduce((a, b) => a * b, 1)) : 0;
};

const lifetimesIntersect = (a: Buffer, b: Buffer) => a.first <= b.last && b.first <= a.last;
const rangesOverlap = (a: Buffer, b: Buffer) => a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;

/**
 * An independent check of a plan against its graph:
 *  - placement: offsets and sizes 256-aligned, inside the arena; two buffers whose lifetimes
 *    intersect have disjoint [offset, offset + bytes); an output written in place lives in the
 *    buffer it overwrites (plan.inPlace), produced where that buffer's last other read happens;
 *  - lifetimes: a buffer starts at its producing step (graph inputs at 0) and covers every read of
 *    every value located in it (views included); graph outputs live to the end;
 *  - bounds: arena >= max-live >= largest buffer; naive >= sum of buffers >= arena; max-live is
 *    what it says (recomputed);
 *  - weights (constants) and load-time values are never in the arena; every other value is.
 */
function expectValidPlan(graph: Graph, plan: MemoryPlan): void {
  const end = graph.nodes.length;
  const loadTime = loadTimeNodes(graph);
  const loadTimeValues = new Set([...loadTime].flatMap((i) => graph.nodes[i].outputs));
  const byValue = new Map(plan.buffers.map((b) => [b.value, b]));
  expect(byValue.size, 'one buffer per value').toBe(plan.buffers.length);
  const bufferOf = (v: string): Buffer | undefined => {
    const base = plan.location.get(v);
    return base === undefined ? undefined : byValue.get(base);
  };

  for (const b of plan.buffers) {
    expect(b.offset % ALIGN, `${b.value} offset aligned`).toBe(0);
    expect(b.bytes % ALIGN, `${b.value} size aligned`).toBe(0);
    expect(b.bytes, `${b.value} holds its value`).toBeGreaterThanOrEqual(bytesOf(graph, b.value));
    expect(b.offset >= 0 && b.offset + b.bytes <= plan.arenaBytes, `${b.value} inside the arena`).toBe(true);
    expect(b.first, `${b.value} lifetime`).toBeLessThanOrEqual(b.last);
    expect(plan.location.get(b.value), `${b.value} is its own location`).toBe(b.value);
  }
  const list = plan.buffers;
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const [a, b] = [list[i], list[j]];
      if (lifetimesIntersect(a, b)) {
        expect(rangesOverlap(a, b), `${a.value} [${a.first},${a.last}]@${a.offset}+${a.bytes} and ${b.value} [${b.first},${b.last}]@${b.offset}+${b.bytes} both live`).toBe(false);
      }
    }
  }
  for (const p of plan.inPlace) {
    const src = byValue.get(p.into);
    expect(src, `${p.value} in place of a buffer`).toBeDefined();
    expect(plan.location.get(p.value), `${p.value} lives in ${p.into}`).toBe(p.into);
    expect(src!.bytes).toBeGreaterThanOrEqual(bytesOf(graph, p.value));
    expect(graph.inputs, 'graph inputs are never overwritten').not.toContain(src!.value);
    expect(graph.nodes[p.step].outputs).toContain(p.value);
    expect(graph.nodes[p.step].inputs.some((x) => x && bufferOf(x) === src), `${p.value}'s node reads ${src!.value}`).toBe(true);
  }

  // Lifetimes.
  for (const input of graph.inputs) {
    expect(plan.location.get(input)).toBe(input);
    expect(byValue.get(input)!.first).toBe(0);
  }
  graph.nodes.forEach((node, i) => {
    if (loadTime.has(i)) {
      for (const o of node.outputs) expect(plan.location.has(o), `load-time value ${o} not in the arena`).toBe(false);
      return;
    }
    for (const x of node.inputs) {
      if (!x) continue;
      const b = bufferOf(x);
      if (!b) {
        expect(graph.constants.has(x) || loadTimeValues.has(x), `${node.op} #${i} reads ${x}: in the arena, a weight or a load-time value`).toBe(true);
        continue;
      }
      expect(b.first <= i && i <= b.last, `${x} (in ${b.value} [${b.first},${b.last}]) read at step ${i}`).toBe(true);
    }
    for (const o of node.outputs) {
      if (!o) continue;
      const b = bufferOf(o);
      expect(b, `${o} located`).toBeDefined();
      expect(b!.first).toBeLessThanOrEqual(i);
      if (b!.value === o) expect(b!.first, `${o} starts where it is produced`).toBe(i);
    }
  });
  for (const o of graph.outputs) expect(bufferOf(o)?.last, `graph output ${o} lives to the end`).toBe(end);
  for (const c of graph.constants.keys()) expect(plan.location.has(c), `weight ${c} not in the arena`).toBe(false);

  // Bounds.
  const largest = Math.max(0, ...list.map((b) => b.bytes));
  expect(plan.arenaBytes).toBe(Math.max(0, ...list.map((b) => b.offset + b.bytes)));
  expect(plan.arenaBytes).toBeGreaterThanOrEqual(plan.maxLiveBytes);
  expect(plan.maxLiveBytes).toBeGreaterThanOrEqual(largest);
  expect(plan.naiveBytes).toBeGreaterThanOrEqual(list.reduce((a, b) => a + b.bytes, 0));
  expect(plan.naiveBytes).toBeGreaterThanOrEqual(plan.arenaBytes);
  let maxLive = 0;
  for (let step = 0; step <= end; step++) {
    const live = list.filter((b) => b.first <= step && step <= b.last);
    maxLive = Math.max(maxLive, live.reduce((a, b) => a + b.bytes, 0));
  }
  expect(plan.maxLiveBytes).toBe(maxLive);
}

/**
 * In place is safe for an element-wise kernel only when the output occupies exactly the memory of
 * the input it overwrites: same offset (a partial overlap makes element k's write clobber an
 * element another thread has yet to read), and the input read is the whole buffer, element for
 * element (not a slice or a strided piece of it).
 */
function expectSafeInPlace(graph: Graph, plan: MemoryPlan): void {
  const producer = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const WHOLE = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity']);
  for (const p of plan.inPlace) {
    // The value read by the kernel that lives in the overwritten buffer must be that buffer's value
    // itself or a whole-buffer view of it (with in-place outputs, a value written in place earlier).
    const reads = graph.nodes[p.step].inputs.filter((x) => x && plan.location.get(x) === p.into);
    const own = new Set([p.into, ...plan.inPlace.filter((q) => q.into === p.into && q.step < p.step).map((q) => q.value)]);
    const whole = (x: string): boolean => own.has(x) || (WHOLE.has(producer.get(x)?.op ?? '') && whole(producer.get(x)!.inputs[0]));
    for (const x of reads) expect(whole(x), `${p.value} overwrites ${p.into} while reading ${x}, a partial view of it`).toBe(true);
  }
}

const check = (graph: Graph): MemoryPlan => {
  const plan = planMemory(graph);
  expectValidPlan(graph, plan);
  return plan;
};

describe('plan-memory on small graphs', () => {
  it('views (Reshape, Split, Unsqueeze, Squeeze) allocate nothing and extend their base\'s lifetime', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [2, 4, 16]] },
      constants: { shape: ints([8, 16]), sizes: ints([8, 8]), zero: ints([0]) },
      nodes: [
        ['Sigmoid', ['x'], ['a']], // 0
        ['Reshape', ['a', 'shape'], ['r']], // 1
        ['Split', ['r', 'sizes'], ['s1', 's2'], { axis: 1 }], // 2
        ['Unsqueeze', ['s1', 'zero'], ['u']], // 3
        ['Squeeze', ['u', 'zero'], ['q']], // 4
        ['Exp', ['x'], ['b']], // 5
        ['Softmax', ['q'], ['c']], // 6: reads a's memory through four views
        ['Softmax', ['s2'], ['d']], // 7: and through the Split
      ],
      outputs: ['b', 'c', 'd'],
    });
    const plan = check(g.graph);
    expect(plan.buffers.map((b) => b.value).sort()).toEqual(['a', 'b', 'c', 'd', 'x']);
    for (const v of ['r', 's1', 's2', 'u', 'q']) expect(plan.location.get(v), v).toBe('a');
    const a = plan.buffers.find((b) => b.value === 'a')!;
    expect([a.first, a.last]).toEqual([0, 7]);
    expect(a.bytes).toBe(512);
    expect(countLaunches(g.graph).total).toBe(4);
    expectSafeInPlace(g.graph, plan);
  });

  it('an element-wise chain reuses memory in place: two buffers suffice, naive needs five', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [4, 64]] },
      nodes: [['Sigmoid', ['x'], ['a']], ['Neg', ['a'], ['b']], ['Tanh', ['b'], ['c']], ['Mul', ['c', 'c'], ['d']]],
      outputs: ['d'],
    });
    const plan = check(g.graph);
    const B = 4 * 64 * 4;
    expect(plan.naiveBytes).toBe(5 * B);
    expect(plan.arenaBytes).toBeLessThan(plan.naiveBytes);
    expect(plan.arenaBytes).toBe(2 * B);
    expect(plan.maxLiveBytes).toBe(2 * B);
    expect(plan.inPlace.length).toBeGreaterThan(0);
    expect(plan.inPlace.find((p) => p.value === 'b')?.into).toBe('a');
    expectSafeInPlace(g.graph, plan);
  });

  it('no in place over a value read later, nor over a graph input', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [4, 64]] },
      nodes: [['Neg', ['x'], ['a']], ['Sigmoid', ['a'], ['b']], ['Add', ['b', 'a'], ['c']]],
      outputs: ['c'],
    });
    const plan = check(g.graph);
    const into = (v: string) => plan.inPlace.find((p) => p.value === v)?.into;
    expect(into('a')).toBeUndefined(); // x is a graph input
    expect(into('b')).toBeUndefined(); // a is read again by c
    expect(into('c')).toBe('b');
    expectSafeInPlace(g.graph, plan);
  });

  it('nothing is placed over a graph input: a replayed CUDA graph reads its inputs again', () => {
    const g = buildGraph({
      inputs: { ids: ['int64', [4, 64]] },
      nodes: [['Cast', ['ids'], ['f'], { to: 1 }], ['Sigmoid', ['f'], ['a']], ['Neg', ['a'], ['b']], ['Tanh', ['b'], ['c']], ['Exp', ['c'], ['d']]],
      outputs: ['d'],
    });
    const plan = check(g.graph);
    const x = plan.buffers.find((b) => b.value === 'ids')!;
    for (const b of plan.buffers.filter((y) => y !== x)) {
      expect(b.offset + b.bytes <= x.offset || x.offset + x.bytes <= b.offset, `${b.value} overlaps the input`).toBe(true);
    }
  });

  it('weights and load-time nodes (Transpose, Concat, bias Reshape, weight Quantize) are never in the arena', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, 16]] },
      constants: {
        W0: randomTensor([16, 16], 1), W1: randomTensor([8, 16], 2), b0: randomTensor([1, 24], 3), bshape: ints([24]), W2: randomTensor([8, 16], 4), sizes: ints([16, 8]),
      },
      nodes: [
        ['Transpose', ['W0'], ['W0t'], { perm: [1, 0] }],
        ['Transpose', ['W0t'], ['W0tt'], { perm: [1, 0] }],
        ['Concat', ['W0tt', 'W1'], ['Wc'], { axis: 0 }],
        ['Reshape', ['b0', 'bshape'], ['bc']],
        ['dc.Linear', ['x', 'Wc', 'bc'], ['y'], { transB: 1 }],
        ['dc.Quantize', ['W2'], ['wq', 'ws'], { format: 'fp8', axis: 1 }],
        ['Sigmoid', ['y'], ['ys']],
        ['Split', ['ys', 'sizes'], ['y0', 'y1'], { axis: -1 }],
        ['dc.Quantize', ['y0'], ['xq', 'xs'], { format: 'fp8', axis: -1 }],
        ['dc.QLinear', ['xq', 'xs', 'wq', 'ws'], ['z'], { transB: 1, format: 'fp8', to: 1 }],
      ],
      outputs: ['z', 'y1'],
    });
    const plan = check(g.graph);
    for (const v of ['W0', 'W1', 'W2', 'b0', 'W0t', 'W0tt', 'Wc', 'bc', 'wq', 'ws']) expect(plan.location.has(v), v).toBe(false);
    expect(plan.buffers.map((b) => b.value).sort()).toEqual(['x', 'xq', 'xs', 'y', 'z'].sort());
    expect(plan.location.get('ys')).toBe('y'); // Sigmoid(y) in place
    expect(countLaunches(g.graph).total).toBe(4); // Linear, Sigmoid, Quantize(y0), QLinear
  });

  // Regression (was a bug): an in-place output was placed greedily on its own and could partially
  // overlap the buffer it overwrites. In-place outputs now live in that buffer, at its offset.
  it('an in-place output lands at its source\'s offset, never partially over it', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 64]], y: ['float32', [1, 128]] },
      nodes: [
        ['Concat', ['x', 'x'], ['v0'], { axis: 1 }],
        ['Add', ['y', 'v0'], ['v1']],
        ['Concat', ['v1', 'x'], ['v2'], { axis: 1 }],
      ],
      outputs: ['v2'],
    });
    const plan = check(g.graph);
    expect(plan.inPlace.find((p) => p.value === 'v1')?.into).toBe('v0');
    expect(plan.location.get('v1')).toBe('v0');
    expectSafeInPlace(g.graph, plan);
  });

  // Regression (was a bug): in place was allowed over a buffer read through a slice of it whose
  // size rounded to the same 256 bytes (c = Neg(a[:, 1:5]) written over a).
  it('no in place over a buffer read through a slice of it', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 5, 8]] },
      constants: { one: ints([1]), five: ints([5]), axis: ints([1]), zero: ints([0]), four: ints([4]) },
      nodes: [
        ['Sigmoid', ['x'], ['a']],
        ['Slice', ['a', 'one', 'five', 'axis'], ['v']],
        ['Neg', ['v'], ['c']],
        ['Slice', ['x', 'zero', 'four', 'axis'], ['xs']],
        ['Add', ['c', 'xs'], ['e']],
      ],
      outputs: ['e'],
    });
    const plan = check(g.graph);
    expectSafeInPlace(g.graph, plan);
  });
});

describe('plan-memory on the optimised tiny fixtures', () => {
  const cases = [...TINY.map((name) => [name, false] as const), ['flux2', true] as const, ['qwen_image', true] as const];
  it.each(cases)('%s (fp8: %s): a valid plan, weights outside, reuse', (name, fp8) => {
    const inferred = inferTypes(importOnnx(join(tinyDir(name), 'model.onnx')).graph);
    const { graph } = runPipeline(inferred, fp8 ? { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) } : {});
    const plan = check(graph);
    expectSafeInPlace(graph, plan);
    expect(plan.arenaBytes).toBeGreaterThan(0);
    expect(plan.arenaBytes).toBeLessThan(plan.naiveBytes);
    // Values computed from weights alone exist in every transformer (fused projection weights).
    for (const i of loadTimeNodes(graph)) for (const o of graph.nodes[i].outputs) expect(plan.location.has(o)).toBe(false);
  });
});

describe('countLaunches', () => {
  it('views and load-time nodes are not launches; an Expand is one only when a non-broadcasting op reads it', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, 8]], shift: ['float32', [1, 1, 8]], gate: ['float32', [1, 8]] },
      constants: { W: randomTensor([8, 8], 1), s48: ints([4, 8]), s148: ints([1, 4, 8]), zero: ints([0]) },
      nodes: [
        ['Reshape', ['x', 's48'], ['r']], // view
        ['Transpose', ['W'], ['Wt'], { perm: [1, 0] }], // load-time
        ['dc.Linear', ['r', 'Wt'], ['l']], // launch 1
        ['Unsqueeze', ['l', 'zero'], ['lu']], // view
        ['Expand', ['shift', 's148'], ['ex']], // read only by an Add, which broadcasts: not a launch
        ['Add', ['lu', 'ex'], ['s']], // launch 2
        ['Expand', ['gate', 's48'], ['ex2']], // read by a Linear: a launch (3)
        ['dc.Linear', ['ex2', 'W'], ['m'], { transB: 1 }], // launch 4
        ['Unsqueeze', ['m', 'zero'], ['mu']], // view
        ['Mul', ['s', 'mu'], ['o']], // launch 5
        ['Squeeze', ['o', 'zero'], ['y']], // view
      ],
      outputs: ['y'],
    });
    expect(countLaunches(g.graph).total).toBe(5);
    // The plan agrees: the broadcast Expand is a view of its input, the materialised one a buffer.
    const plan = check(g.graph);
    expect(plan.location.get('ex')).toBe('shift');
    expect(plan.location.get('ex2')).toBe('ex2');
    expect(plan.location.has('Wt')).toBe(false);
    expect(plan.buffers.map((b) => b.value).sort()).toEqual(['ex2', 'gate', 'l', 'm', 'shift', 'x']);
    // Add(lu, ex) writes over l (read whole through the view lu); Mul(s, mu) then over the same.
    expect(plan.location.get('s')).toBe('l');
    expect(plan.location.get('o')).toBe('l');
  });

  it('an Expand read by both a broadcasting op and a GEMM is a launch; one of a constant is load-time', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [4, 8]], gate: ['float32', [1, 8]] },
      constants: { W: randomTensor([8, 8], 1), e: randomTensor([1, 8], 2), s48: ints([4, 8]) },
      nodes: [
        ['Expand', ['gate', 's48'], ['ex']], // launch 1 (the Linear needs it materialised)
        ['Add', ['x', 'ex'], ['a']], // launch 2
        ['dc.Linear', ['ex', 'W'], ['m'], { transB: 1 }], // launch 3
        ['Expand', ['e', 's48'], ['ec']], // load-time
        ['Mul', ['a', 'ec'], ['b']], // launch 4
        ['Add', ['b', 'm'], ['y']], // launch 5
      ],
      outputs: ['y'],
    });
    expect(countLaunches(g.graph).total).toBe(5);
    const plan = check(g.graph);
    expect(plan.location.get('ex')).toBe('ex');
    expect(plan.location.has('ec')).toBe(false);
  });

  it('attributes launches to blocks by the weights they read; a GEMM over several blocks\' weights is shared', () => {
    const w = (seed: number) => randomTensor([8, 8], seed);
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, 8]] },
      constants: { 'transformer_blocks.0.ff.weight': w(1), 'transformer_blocks.1.ff.weight': w(2), 'transformer_blocks.0.mod.weight': w(3), 'transformer_blocks.1.mod.weight': w(4) },
      nodes: [
        ['Concat', ['transformer_blocks.0.mod.weight', 'transformer_blocks.1.mod.weight'], ['mods'], { axis: 0 }], // load-time
        ['dc.Linear', ['x', 'mods'], ['mod'], { transB: 1 }], // shared
        ['dc.Linear', ['x', 'transformer_blocks.0.ff.weight'], ['h0'], { transB: 1 }], // block 0
        ['Sigmoid', ['h0'], ['a0']], // block 0 (follows the latest weight-reading launch)
        ['dc.Linear', ['a0', 'transformer_blocks.1.ff.weight'], ['h1'], { transB: 1 }], // block 1
        ['Sigmoid', ['h1'], ['a1']], // block 1
        ['Tanh', ['a1'], ['t1']], // block 1
      ],
      outputs: ['t1', 'mod'],
    });
    const report = countLaunches(g.graph);
    expect(report.total).toBe(6);
    expect(report.shared).toBe(1);
    expect(report.kinds).toEqual([{ kind: 'transformer_blocks', blocks: 2, min: 2, max: 3, perBlock: [2, 3] }]);
  });
});

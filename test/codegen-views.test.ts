/**
 * Launch arguments that are views (Split parts, Slices) of another launch's output: the plan hands
 * a kernel a pointer to the view's first element, and the element-wise descriptor reads the view
 * with its window's strides. Checked by addressing a buffer laid out as the memory plan lays it
 * out, exactly as the kernel's index arithmetic does, against where each element really is;
 * kernels that read dense arrays (GEMMs) refuse a view with gaps, naming it.
 */
import { describe, expect, it } from 'vitest';
import { elementwiseDescriptor } from '../compiler/codegen/elementwise.ts';
import { kernelPlan } from '../compiler/codegen/plan.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { buildGraph, ints, only } from './helpers/graph.ts';

const splitGraph = (consumer: 'Mul' | 'dc.Linear') => buildGraph({
  inputs: { x: ['float32', [4, 48]] },
  constants: { sizes: ints([16, 16, 16]), w: Tensor.fromNumbers('float32', [16, 8], Array.from({ length: 128 }, (_, i) => i / 128)) },
  nodes: [
    ['Sigmoid', ['x'], ['s']],
    ['Split', ['s', 'sizes'], ['a', 'b', 'c'], { axis: -1 }],
    consumer === 'Mul' ? ['Mul', ['b', 'c'], ['y']] : ['dc.Linear', ['b', 'w'], ['y']],
  ],
  outputs: ['y', 'a'],
}).graph;

describe('views as launch arguments', () => {
  it('points at the window start and reads it with the window strides', () => {
    const graph = splitGraph('Mul');
    const memory = planMemory(graph);
    const plan = kernelPlan(graph, memory);
    const mul = plan.launches.find((l) => l.node === 'y')!;
    const root = memory.buffers.find((b) => b.value === 's')!.offset;
    expect(mul.args.map((a) => [a.value, a.offset])).toEqual([['b', root + 16 * 4], ['c', root + 32 * 4], ['y', memory.buffers.find((b) => b.value === 'y')!.offset]]);

    const d = elementwiseDescriptor(graph, only(graph, 'Mul'));
    expect(d.inputs.map((i) => [i.colStride, i.rowDims.map((r) => r.stride), i.vector])).toEqual([[1, [48], true], [1, [48], true]]);

    // The arena as the plan lays it out, s holding distinct values (its flat index); read b and c
    // the way the kernel does: pointer (the arg's offset) + row * row stride + col * colStride.
    const arena = new Float32Array(memory.arenaBytes / 4).fill(NaN);
    for (let i = 0; i < 4 * 48; i++) arena[root / 4 + i] = i;
    const read = (k: number, r: number, col: number) => arena[mul.args[k].offset! / 4 + r * d.inputs[k].rowDims[0].stride + col * d.inputs[k].colStride];
    for (let r = 0; r < 4; r++) for (let col = 0; col < 16; col++) {
      expect(read(0, r, col)).toBe(r * 48 + 16 + col); // b = s[:, 16:32]
      expect(read(1, r, col)).toBe(r * 48 + 32 + col); // c = s[:, 32:48]
    }
  });

  it('refuses a strided view as a GEMM operand, naming it', () => {
    const graph = splitGraph('dc.Linear');
    expect(() => kernelPlan(graph, planMemory(graph))).toThrow(/Linear launch -> y.*dense inputs.*'b' with strides \[48,1\]/);
  });
});

/**
 * The pass contract: a named Graph -> Graph function that never edits its input, and reports
 * how many times each of its rules fired (the pipeline's report shows rules that matched nothing).
 */
import type { Graph } from '../compiler/ir/graph.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';

export interface PassContext {
  /** Compile-time values of the input graph (constants, folded shape arithmetic). */
  readonly known: ReadonlyMap<string, Tensor>;
  /** Records that `rule` rewrote `n` places. */
  count(rule: string, n?: number): void;
}

export interface Pass {
  readonly name: string;
  /** Rules this pass may report, so a rule that never fired still shows up as 0. */
  readonly rules: readonly string[];
  run(graph: Graph, ctx: PassContext): Graph;
}

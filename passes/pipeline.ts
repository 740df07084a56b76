/**
 * The pass pipeline: one ordered list of passes with typed options, run in order, each timed and
 * counted. After every pass the graph is re-inferred, which both checks that the pass left a
 * well-typed graph and gives the next pass fresh compile-time values. A graph dump after any pass
 * is available on request. Later issues append their passes (canonicalize, fuse-*, quantize,
 * plan-memory) to PIPELINE.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes, type Inferred } from '../compiler/ir/infer.ts';
import { printGraph } from '../compiler/ir/print.ts';
import { canonicalize, canonicalizeSwiglu } from './canonicalize/index.ts';
import { fuseAttention } from './fuse-attention.ts';
import { fuseElementwise } from './fuse-elementwise.ts';
import { makeFuseGemmGlu } from './fuse-gemm-glu.ts';
import { makeFuseGemmResidual, makeUnfuseGemmResidual } from './fuse-gemm-residual.ts';
import { fuseHorizontal, type HorizontalOptions, makeFuseHorizontal } from './fuse-horizontal.ts';
import { fuseLinear } from './fuse-linear.ts';
import { makeFuseVQuant } from './fuse-vquant.ts';
import { fuseNorms } from './fuse-norms.ts';
import { lowerConv } from './lower-conv.ts';
import { lowerAttention } from './lower-attention.ts';
import type { Pass } from './pass.ts';
import { makeFoldQuantize } from './quantize/fold.ts';
import type { QuantizePass } from './quantize/insert.ts';
import { castLikeToCast } from './simplify/cast-like-to-cast.ts';
import { eliminateCommon } from './simplify/eliminate-common.ts';
import { foldConstants } from './simplify/fold-constants.ts';
import { lowerSequences } from './simplify/lower-sequences.ts';
import { removeDead } from './simplify/remove-dead.ts';
import { removeNoops } from './simplify/remove-noops.ts';

/** simplify: the exporter's noise out (constants, casts, sequences, duplicates, dead code). */
export const SIMPLIFY: readonly Pass[] = [foldConstants, lowerSequences, castLikeToCast, removeNoops, eliminateCommon, removeDead];

/** The VAE decoders' convolutions and channel norms (before element-wise fusion, which would split their groups). */
const VAE: readonly Pass[] = [lowerConv, fuseNorms];

export const PIPELINE: readonly Pass[] = [...SIMPLIFY, canonicalize, fuseAttention, fuseLinear, canonicalizeSwiglu, ...VAE, fuseElementwise, fuseHorizontal];

/** The pipeline for a precision: quantization (insert, then fold) goes after the GEMMs are fused
 * and before element-wise fusion, which then pulls each activation Quantize into its producer.
 * `horizontal`: what fuse-horizontal merges besides row kernels (twin GEMMs where the own GEMM runs them);
 * where the own GEMM runs them, gated residual adds and SwiGLUs go into its epilogue too (fuse-gemm-residual,
 * fuse-gemm-glu), and the 8-bit
 * attention's V quantization (e4m3, or s8 for the integer P·V) into the V projection's epilogue and the pack (fuse-vquant, after fuse-horizontal:
 * it takes the GEMMs the own kernel runs as they are then launched). */
export function pipelineFor(quantize: QuantizePass | undefined, horizontal: HorizontalOptions = {}): readonly Pass[] {
  if (!quantize) return PIPELINE;
  const own = horizontal.gemms;
  const residual = own ? [makeFuseGemmResidual(own), makeFuseGemmGlu(own)] : [], undo = own ? [makeUnfuseGemmResidual(own)] : [], vquant = own ? [makeFuseVQuant(own)] : [];
  return [...SIMPLIFY, canonicalize, fuseAttention, fuseLinear, canonicalizeSwiglu, quantize, makeFoldQuantize(quantize.accumulate), ...residual, ...VAE, fuseElementwise, lowerAttention, makeFuseHorizontal(horizontal), ...vquant, ...undo];
}

export interface PassReport {
  name: string;
  ms: number;
  nodesBefore: number;
  nodesAfter: number;
  rewrites: Record<string, number>;
}

export interface PipelineOptions {
  passes?: readonly Pass[];
  /** Write a text dump of the graph after these passes (names) into dumpDir. */
  dumpAfter?: readonly string[];
  dumpDir?: string;
  /** Re-run the whole list until a round changes nothing (at most this many rounds). */
  maxRounds?: number;
}

export interface PipelineResult extends Inferred {
  reports: PassReport[];
}

export function runPipeline(input: Inferred, options: PipelineOptions = {}): PipelineResult {
  const passes = options.passes ?? PIPELINE;
  const reports: PassReport[] = [];
  let current = input;
  for (let round = 0; round < (options.maxRounds ?? 3); round++) {
    let changedThisRound = false;
    for (const pass of passes) {
      const report: PassReport = {
        name: round === 0 ? pass.name : `${pass.name} (round ${round + 1})`, ms: 0, nodesBefore: current.graph.nodes.length, nodesAfter: 0,
        rewrites: Object.fromEntries(pass.rules.map((r) => [r, 0])),
      };
      const t0 = performance.now();
      let fired = 0;
      const graph: Graph = pass.run(current.graph, {
        known: current.known,
        count: (rule, n = 1) => {
          report.rewrites[rule] = (report.rewrites[rule] ?? 0) + n;
          fired += n;
        },
      });
      current = inferTypes(graph);
      report.ms = performance.now() - t0;
      report.nodesAfter = graph.nodes.length;
      // Every pass shows in the first round (a rule that matched nothing is visible); later rounds
      // only list passes that changed something.
      if (round === 0 || fired > 0) reports.push(report);
      if (fired > 0) changedThisRound = true;
      if (options.dumpAfter?.includes(pass.name) && options.dumpDir) {
        writeFileSync(join(options.dumpDir, `after-${pass.name}-round${round + 1}.txt`), printGraph(graph));
      }
    }
    if (!changedThisRound) break;
  }
  return { ...current, reports };
}

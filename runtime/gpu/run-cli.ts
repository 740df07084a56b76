/**
 * run-cli: runs a compiled artifact on the GPU (the GPU host has no Node: runtime/gpu/pack.ts
 * bundles this file with a Node binary; see runtime/gpu/README.md).
 *
 *   run-cli ARTIFACT [--inputs DIR] [--reference DIR] [--max-rel-l2 X] [--min-cosine Y] [--out DIR]
 *           [--synthetic-weights SEED] [--time N] [--profile] [--no-graphs] [--trace] [--no-gemm-tuning] [--weights-from DIR] [--json]
 *   run-cli ARTIFACT --check [--capability 9.0]     checks the artifact only (no GPU needed)
 *   run-cli ARTIFACT --synthetic-fills SEED --out FILE.json
 *           writes the draws --synthetic-weights SEED makes (no GPU needed): per weight entry its
 *           fills (section, count, element kind, float32 scale/offset, seed), stored bits at a few
 *           indices from the CPU mirror of dc_fill, and its provenance (sources / unsourced) —
 *           what bench/gpu/same_weights.py needs to give PyTorch the same weights
 *   run-cli --check-headers CUDA_INCLUDE_DIR         compares cuBLASLt constants with CUDA's headers
 *
 * Inputs: DIR/input_<name>.npy for every graph input (the tiny fixtures' layout); with synthetic
 * weights and no --inputs, seeded random inputs. --reference compares each output with
 * DIR/output_<name>.npy (relative L2 and cosine; the bars make it exit 3). --time N replays the
 * captured CUDA graph N times and, as the baseline in the same run, the same plan launch by launch,
 * with the graph replays' joules a run from NVML's energy counter (nvml.ts; "not measured" without it);
 * --profile times each launch on its own (events between launches) and sums by kind (--json: every launch too).
 * --trace runs launch by launch, naming each launch on stderr before it runs and waiting for it after
 * (no CUDA graph): the last line names the launch that hangs or faults.
 * --no-gemm-tuning keeps the cuBLASLt heuristic's first algorithm for every GEMM even where
 * $DC_GEMM_TUNING asks for load-time tuning (tuning-cache.ts, cublaslt.ts tune()); the JSON lists each
 * shape's tuning (`gemmTuning`).
 * --weights-from DIR loads the module in DIR first and runs ARTIFACT over its device weights (a
 * pipeline artifact's transformer_cfg/ over its transformer/: model.ts weightsFrom).
 * Synthetic weights are labelled in every line, in the JSON and in the output file names.
 * Exit codes: 0 ok, 1 bad input (one line), 3 outside the bars, 70 a bug.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine, runCommand } from '../../compiler/cli/command.ts';
import { fail } from '../../compiler/errors.ts';
import { readNpy, writeNpy } from '../../compiler/npy.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { openArtifact } from './artifact.ts';
import { checkConstants, specFor } from './cublaslt.ts';
import { fillPlan } from './weights.ts';
import { loadModel } from './model.ts';
import { energyWindow, openNvml } from './nvml.ts';

const USAGE = 'run-cli ARTIFACT [--inputs DIR] [--reference DIR] [--max-rel-l2 X] [--min-cosine Y] [--out DIR] [--synthetic-weights SEED] [--time N] [--profile] [--no-graphs] [--trace] [--no-gemm-tuning] [--weights-from DIR] [--json] | ARTIFACT --check [--capability X.Y] | ARTIFACT --synthetic-fills SEED --out FILE.json | --check-headers DIR';

/** The synthetic draws of an artifact with their provenance (no GPU): see the header, --synthetic-fills. */
export function syntheticFillsFile(dir: string, seed: number) {
  const a = openArtifact(dir, { capability: null, synthetic: true });
  const m = a.manifest;
  // A module over another's weights draws only its own entries, seeded by the donor's indices: its donor's fills are the ones to read.
  const shared = m.weights.tensors.find((t) => t.shared);
  if (shared) fail(`--synthetic-fills ${dir}`, 'a module that holds its weights (run it on the module this one shares them with)', `weight '${shared.name}' is the other module's`);
  const fanIn = new Map<string, number>();
  const converted = new Set<string>();
  for (const l of m.launchPlan) {
    if (l.kind !== 'gemm') continue;
    const s = specFor(l, m.values, (v) => a.weightByValue.get(v));
    fanIn.set(s.w, s.k);
    if (s.bias !== undefined && s.biasType !== s.biasStoredType) converted.add(a.weightByValue.get(s.bias)!.name);
  }
  const fileBytes = a.weightsFile ? (m.weights as { bytes: number }).bytes : null;
  return { artifact: dir, model: m.model, precision: m.precision, seed, entries: fillPlan(m.weights.tensors, seed, fileBytes, (n) => fanIn.get(n), converted) };
}

/** Relative L2 and cosine of two equally long vectors (float64 sums). */
export function compare(out: ArrayLike<number>, ref: ArrayLike<number>): { relL2: number; cosine: number } {
  let dd = 0, rr = 0, oo = 0, or = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i], r = ref[i];
    dd += (o - r) ** 2; rr += r * r; oo += o * o; or += o * r;
  }
  return { relL2: Math.sqrt(dd / rr), cosine: or / Math.sqrt(oo * rr) };
}

/** Seeded inputs of the artifact's shapes: floats ~ U(-1, 1), masks all ones, other integers (ids) in [0, 64). */
export function randomInputs(specs: { name: string; dtype: string; shape: number[] }[], seed: number): Record<string, Tensor> {
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s ^ (s >>> 15), 0x2C1B3C6D) + 0x6D2B79F5) >>> 0; return s / 2 ** 32; };
  return Object.fromEntries(specs.map((spec) => {
    const dtype = spec.dtype === 'bfloat16' || spec.dtype === 'float16' ? 'float32' : spec.dtype;
    const t = Tensor.zeros(dtype as Tensor['dtype'], spec.shape);
    const mask = /mask/i.test(spec.name);
    for (let i = 0; i < t.size; i++) t.set(i, dtype.startsWith('float') ? 2 * next() - 1 : mask ? 1 : Math.floor(64 * next()));
    return [spec.name, t];
  }));
}

const asFloat32 = (t: Tensor) => (t.dtype === 'float32' ? t : new Tensor('float32', t.shape, t.toFloat32()));

export function main(argv: string[]): Promise<number> {
  return runCommand('runtime', async (out) => {
    const parsed = parseCommandLine({
        args: argv, allowPositionals: true, strict: true,
        options: {
          inputs: { type: 'string' }, reference: { type: 'string' }, out: { type: 'string' }, 'synthetic-weights': { type: 'string' }, 'weights-from': { type: 'string' },
          time: { type: 'string' }, 'no-graphs': { type: 'boolean' }, trace: { type: 'boolean' }, 'no-gemm-tuning': { type: 'boolean' }, json: { type: 'boolean' }, check: { type: 'boolean' },
          capability: { type: 'string' }, 'check-headers': { type: 'string' }, 'synthetic-fills': { type: 'string' }, profile: { type: 'boolean' }, 'max-rel-l2': { type: 'string' }, 'min-cosine': { type: 'string' },
        },
    }, USAGE);
    const { values: v, positionals } = parsed;
    const json = (out.json = !!v.json);
    const say = (line: string) => (json ? console.error(line) : console.log(line));
    if (v['check-headers']) {
      const dir = v['check-headers'];
      const text = ['cublasLt.h', 'cublas_api.h', 'library_types.h'].map((f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '')).join('\n');
      const problems = checkConstants(text);
      say(problems.length ? `cuBLASLt constants differ from ${dir}: ${problems.join('; ')}` : `cuBLASLt constants match ${dir}`);
      return problems.length ? 1 : 0;
    }
    if (positionals.length !== 1) fail('command line', `one ARTIFACT folder (${USAGE})`, positionals.join(' ') || 'none');
    const dir = positionals[0];
    const number = (flag: string, text: string | undefined) => {
      if (text === undefined) return undefined;
      const n = Number(text);
      if (!Number.isFinite(n) || n < 0) fail(`--${flag}`, 'a non-negative number', `'${text}'`);
      return n;
    };
    const seed = number('synthetic-weights', v['synthetic-weights']);
    const tag = seed !== undefined ? '[SYNTHETIC weights] ' : '';

    const fillsSeed = number('synthetic-fills', v['synthetic-fills']);
    if (fillsSeed !== undefined) {
      if (!v.out) fail('--synthetic-fills', '--out FILE.json', 'no --out');
      const plan = syntheticFillsFile(dir, fillsSeed);
      writeFileSync(v.out!, JSON.stringify(plan));
      const fills = plan.entries.reduce((n, e) => n + e.fills.length, 0);
      const unsourced = plan.entries.filter((e) => e.unsourced).map((e) => e.name);
      say(`synthetic fills (seed ${fillsSeed}) of ${dir}: ${plan.entries.length} entries, ${fills} fills -> ${v.out}${unsourced.length ? `; without sources: ${unsourced.join(', ')}` : ''}`);
      if (json) console.log(JSON.stringify({ artifact: dir, out: v.out, entries: plan.entries.length, fills, unsourced }));
      return 0;
    }

    if (v.check) {
      const cap = v.capability ? (v.capability.split('.').map(Number) as [number, number]) : null;
      if (cap && (cap.length !== 2 || cap.some((x) => !Number.isInteger(x)))) fail('--capability', 'MAJOR.MINOR, e.g. 9.0', `'${v.capability}'`);
      const a = openArtifact(dir, { capability: cap, synthetic: seed !== undefined, inputs: v.inputs ? readInputs(v.inputs) : undefined });
      say(`${tag}artifact ${dir}: ${a.manifest.model} ${a.manifest.target} ${a.manifest.precision}, ${a.manifest.launchPlan.length} launches, ${a.cubins.size} kernel units, checks passed`);
      if (json) console.log(JSON.stringify({ artifact: dir, ok: true, synthetic: seed !== undefined }));
      return 0;
    }

    const log = (l: string) => console.error(`${tag}${l}`);
    const donor = v['weights-from'] ? loadModel(v['weights-from'], { syntheticWeights: seed, gemmTuning: false, log }) : undefined;
    let model: ReturnType<typeof loadModel>;
    try {
      model = loadModel(dir, { syntheticWeights: seed, graphs: !v['no-graphs'], ...(v.trace ? { trace: (line: string) => process.stderr.write(`${line}\n`) } : {}), gemmTuning: !v['no-gemm-tuning'], log, ...(donor ? { weightsFrom: donor } : {}) });
    } catch (e) {
      donor?.close();
      throw e;
    }
    try {
      const m = model.artifact.manifest;
      const inputs = v.inputs ? readInputs(v.inputs) : seed !== undefined ? randomInputs(m.io.inputs, seed + 1) : fail('--inputs', 'a folder of input_<name>.npy (or --synthetic-weights SEED for random inputs)', 'none');
      const t0 = performance.now();
      const outputs = model.run(inputs);
      const firstMs = performance.now() - t0;
      const result: Record<string, unknown> = {
        artifact: dir, model: m.model, target: m.target, precision: m.precision, synthetic: model.synthetic, device: model.device.name,
        loadSeconds: model.loadSeconds, firstRunMs: firstMs, memory: model.memory, gemmTuning: model.gemmTuning, outputs: {} as Record<string, unknown>,
      };
      let failed = false;
      for (const [name, t] of Object.entries(outputs)) {
        const f = t.toFloat32();
        let finite = 0, sumAbs = 0;
        for (const x of f) if (Number.isFinite(x)) { finite++; sumAbs += Math.abs(x); }
        const entry: Record<string, unknown> = { dtype: t.dtype, shape: t.shape, finite: finite / f.length, meanAbs: sumAbs / Math.max(finite, 1) };
        if (v.reference) {
          const ref = readNpy(join(v.reference, `output_${name}.npy`)).toFloat32();
          if (ref.length !== f.length) fail(`${v.reference}/output_${name}.npy`, `${f.length} elements (${t.dtype}[${t.shape}])`, `${ref.length}`);
          Object.assign(entry, compare(f, ref));
          const maxL2 = number('max-rel-l2', v['max-rel-l2']), minCos = number('min-cosine', v['min-cosine']);
          const pass = (maxL2 === undefined || (entry.relL2 as number) <= maxL2) && (minCos === undefined || (entry.cosine as number) >= minCos);
          entry.passed = pass;
          failed ||= !pass;
        }
        (result.outputs as Record<string, unknown>)[name] = entry;
        say(`${tag}output ${name}: ${t.dtype}[${t.shape}], finite ${(100 * (entry.finite as number)).toFixed(1)}%, mean |y| ${(entry.meanAbs as number).toPrecision(4)}${entry.relL2 !== undefined ? `, vs reference: rel L2 ${(entry.relL2 as number).toExponential(3)}, cosine ${(entry.cosine as number).toFixed(6)}${entry.passed ? '' : ' OUTSIDE THE BARS'}` : ''}`);
        if (v.out) {
          mkdirSync(v.out, { recursive: true });
          writeNpy(join(v.out, `output_${name}${model.synthetic ? '.synthetic' : ''}.npy`), asFloat32(t));
        }
      }
      const n = number('time', v.time);
      if (n) {
        const window = energyWindow(openNvml(model.device.pciBusId));
        const graph = model.time(n, true), energy = window(n);
        const eager = model.time(n, false);
        const timing: Record<string, unknown> = { iterations: n, graph: { ...graph, ...(energy ? { energy } : {}) }, eager };
        result.timing = timing;
        say(`${tag}time per run over ${n} replays: CUDA graph median ${graph.medianMs.toFixed(3)} ms (min ${graph.minMs.toFixed(3)}), launch by launch median ${eager.medianMs.toFixed(3)} ms (min ${eager.minMs.toFixed(3)})`);
        say(energy ? `${tag}energy per run (CUDA graph, NVML board counter): ${energy.joulesPerRun.toFixed(2)} J at ${energy.meanWatts.toFixed(0)} W mean, SM clock ${energy.smClockMHz} MHz` : `${tag}energy: not measured (NVML or its energy counter unavailable)`);
        // The step memo (runtime/gpu/memo.ts): a step whose timestep-only launches are restored from an
        // earlier step with these inputs, timed alternating with the full step.
        const memo = model.timeMemo(n);
        if (memo) {
          timing.memo = memo;
          failed ||= !memo.identical;
          say(`${tag}time per run with the step memo (${memo.launchesSkipped} launches restored, not computed), alternating with the full step: median ${memo.medianMs.toFixed(3)} ms (min ${memo.minMs.toFixed(3)}) against ${memo.full.medianMs.toFixed(3)} ms (min ${memo.full.minMs.toFixed(3)}), outputs ${memo.identical ? 'identical to the full step\'s' : 'DIFFERENT from the full step\'s'}`);
        }
      }
      if (v.profile) {
        // Launch by launch with an event between launches (adds the gaps a CUDA graph removes): where the time goes.
        const launches = model.profile();
        const total = launches.reduce((a, l) => a + l.ms, 0);
        const byLabel = new Map<string, { n: number; ms: number }>();
        for (const l of launches) { const e = byLabel.get(l.label) ?? { n: 0, ms: 0 }; e.n++; e.ms += l.ms; byLabel.set(l.label, e); }
        const rows = [...byLabel].sort((a, b) => b[1].ms - a[1].ms);
        result.profile = { totalMs: total, byKind: Object.fromEntries(rows), launches };
        say(`${tag}profile (launch by launch, ${launches.length} launches, ${total.toFixed(2)} ms): ${rows.map(([k, e]) => `${k} x${e.n} ${e.ms.toFixed(2)} ms (${((100 * e.ms) / total).toFixed(1)}%)`).join('; ')}`);
      }
      if (json) console.log(JSON.stringify(result));
      return failed ? 3 : 0;
    } finally {
      model.close();
      donor?.close();
    }
  });
}

/** Every DIR/input_<name>.npy, by name (checked against the artifact's inputs when it runs). */
function readInputs(dir: string): Record<string, Tensor> {
  if (!existsSync(dir)) fail(`--inputs ${dir}`, 'a folder of input_<name>.npy', 'no such folder');
  const files = readdirSync(dir).filter((f) => /^input_.+\.npy$/.test(f)).sort();
  if (!files.length) fail(`--inputs ${dir}`, 'a folder of input_<name>.npy', 'no input_*.npy in it');
  return Object.fromEntries(files.map((f) => [f.slice('input_'.length, -'.npy'.length), readNpy(join(dir, f))]));
}

const isMain = process.argv[1] && /run-cli\.(ts|mjs|js)$/.test(process.argv[1]);
if (isMain) process.exitCode = await main(process.argv.slice(2));

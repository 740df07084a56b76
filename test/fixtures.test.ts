/**
 * The seven tiny fixtures, end to end on the CPU: the reference executor matches onnxruntime-node
 * on fresh random inputs (relative L2 <= 1e-5) before and after the whole pass pipeline, and the
 * compiled graph matches PyTorch's own outputs stored beside each fixture.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runReference } from '../compiler/exec/reference.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { readNpy } from '../compiler/npy.ts';
import { compareOutputs } from '../compiler/verify.ts';
import { runPipeline } from '../passes/pipeline.ts';
import { TINY, fixtureInputs, randomInputsLike, runOrt, tinyDir } from './helpers/fixtures.ts';

describe.each(TINY)('tiny fixture %s', (name) => {
  const model = join(tinyDir(name), 'model.onnx');

  it('matches onnxruntime on fresh random inputs, before and after the pipeline', async () => {
    const inferred = inferTypes(importOnnx(model).graph);
    const optimised = runPipeline(inferred).graph;
    for (const seed of [1, 2]) {
      const inputs = randomInputsLike(name, seed * 7919);
      const expected = await runOrt(model, inputs);
      const before = compareOutputs(runReference(inferred.graph, inputs), expected);
      const after = compareOutputs(runReference(optimised, inputs), expected);
      expect(before.relL2, `before passes, seed ${seed}`).toBeLessThanOrEqual(1e-5);
      expect(after.relL2, `after passes, seed ${seed}`).toBeLessThanOrEqual(1e-5);
      expect(after.cosine).toBeGreaterThan(0.99999);
    }
  });

  it("matches PyTorch's outputs on the fixture inputs", () => {
    const optimised = runPipeline(inferTypes(importOnnx(model).graph)).graph;
    const outputs = runReference(optimised, fixtureInputs(name));
    const refs = Object.fromEntries(optimised.outputs.map((o) => [o, readNpy(join(tinyDir(name), `output_${o}.npy`))]));
    expect(compareOutputs(outputs, refs).relL2).toBeLessThanOrEqual(1e-5);
  });

  it('infers the same types the exporter declared in value_info', () => {
    const { graph, declared } = importOnnx(model);
    const { graph: inferred } = inferTypes(graph);
    let compared = 0;
    for (const [value, type] of declared) {
      const ours = inferred.types.get(value);
      if (!ours || type.kind !== 'tensor' || type.shape.some((d) => typeof d !== 'number')) continue;
      expect(ours, value).toEqual(type);
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });
});

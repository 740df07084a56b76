/**
 * The GPU executor's seam (runtime/executor/gpu.ts) over a stand-in module: a module that can launch
 * and finish apart (runtime/gpu/model.ts start) is launched at the call and waited for only after the
 * caller's synchronous work (a request's noise drawn while the text encoder runs); a module without
 * start is run in one piece; runMany takes the same route.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type CompiledModule, gpuExecutorFactory } from '../../runtime/executor/gpu.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpu-exec-'));
writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ inputs: { x: 'float32[2]' }, outputs: { y: 'float32[2]' } }));
const x = new Tensor('float32', [2], Float32Array.of(1, 2));
const y = (v: number) => ({ y: new Tensor('float32', [2], Float32Array.of(v, v)) });

function standIn(events: string[], withStart: boolean): CompiledModule {
  return {
    run: () => { events.push('run'); return y(1); },
    runMany: (list) => { events.push(`runMany ${list.length}`); return list.map((_, i) => y(i)); },
    ...(withStart ? { start: (list: Record<string, Tensor>[]) => { events.push(`launch ${list.length}`); return () => { events.push('finish'); return list.map((_, i) => y(i)); }; } } : {}),
    close: () => undefined,
  };
}

describe('GPU executor: launch, then wait after the caller\'s own work', () => {
  it('a module with start is launched at the call and finished after the caller\'s synchronous work, run and runMany alike', async () => {
    const events: string[] = [];
    const exec = await gpuExecutorFactory({ loadModel: () => standIn(events, true) })({ role: 'transformer', onnx: dir, compiled: dir, concurrentRuns: 2 });
    const one = exec.run({ x });
    events.push('caller');
    expect(Object.keys(await one)).toEqual(['y']);
    const two = exec.runMany!([{ x }, { x }]);
    events.push('caller');
    expect((await two).map((o) => o.y.data[0])).toEqual([0, 1]);
    expect(events).toEqual(['launch 1', 'caller', 'finish', 'launch 2', 'caller', 'finish']);
  });

  it('a module without start runs in one piece', async () => {
    const events: string[] = [];
    const exec = await gpuExecutorFactory({ loadModel: () => standIn(events, false) })({ role: 'transformer', onnx: dir, compiled: dir, concurrentRuns: 2 });
    const one = exec.run({ x });
    events.push('caller');
    await one;
    await exec.runMany!([{ x }, { x }]);
    expect(events).toEqual(['run', 'caller', 'runMany 2']);
  });
});

/**
 * The GPU executor's seam (runtime/executor/gpu.ts) over a stand-in module: a module that can launch
 * and finish apart (runtime/gpu/model.ts start) is launched at the call and waited for only after the
 * caller's synchronous work (a request's noise drawn while the text encoder runs), through its settled() where it has one; a module without
 * start is run in one piece; runMany takes the same route. A batch-2 module beside takes pairs of runs;
 * input-shape variants (shorter texts) take the calls whose inputs have their shapes.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type CompiledModule, gpuExecutorFactory, placeholders } from '../../runtime/executor/gpu.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpu-exec-'));
writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ inputs: { x: 'float32[2]' }, outputs: { y: 'float32[2]' } }));
mkdirSync(`${dir}-b2`);
writeFileSync(join(`${dir}-b2`, 'manifest.json'), JSON.stringify({ inputs: { x: 'float32[2,2]' }, outputs: { y: 'float32[2,2]' } }));
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

  it('a finish with settled() (the GPU module\'s) is awaited before finish(): Node\'s event loop runs while the GPU works', async () => {
    const events: string[] = [];
    const module: CompiledModule = {
      run: () => y(1),
      start: (list) => {
        events.push(`launch ${list.length}`);
        const finish = () => { events.push('finish'); return list.map((_, i) => y(i)); };
        // Done two turns of the event loop later (the caller's setImmediate runs in between): a finish() before that would be a wait that held the loop.
        return Object.assign(finish, { settled: () => new Promise<void>((resolve) => setImmediate(() => setImmediate(() => { events.push('settled'); resolve(); }))) });
      },
      close: () => undefined,
    };
    const exec = await gpuExecutorFactory({ loadModel: () => module })({ role: 'transformer', onnx: dir, compiled: dir });
    const one = exec.run({ x });
    events.push('caller');
    setImmediate(() => events.push('event loop'));
    await one;
    expect(events).toEqual(['launch 1', 'caller', 'event loop', 'settled', 'finish']);
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

describe('GPU executor with a batch-2 module beside (GraphRef.batched: true CFG in one run)', () => {
  it('pairs of runs go to the batch-2 module stacked and come back split; single runs and the loop of one set stay on the batch-1 module; both close, the borrower first', async () => {
    const events: string[] = [];
    const sample = (v: number) => new Tensor('float32', [1, 2], Float32Array.of(v, v + 0.5));
    const one: CompiledModule = {
      run: (g) => { events.push('b1 run'); return { y: g.x }; },
      denoise: (l) => { events.push(`b1 denoise ${l.inputs.length}`); return new Float32Array(1); },
      close: () => events.push('b1 close'),
    };
    const two: CompiledModule = {
      // Echoes its stacked input, so the split halves must be each set's own sample.
      run: (g) => { events.push(`b2 run [${g.x.shape}] ${Array.from(g.x.data as Float32Array)}`); return { y: g.x }; },
      denoise: (l) => { events.push(`b2 denoise ${l.inputs.length}`); return new Float32Array(1); },
      close: () => events.push('b2 close'),
    };
    const options: unknown[] = [];
    const exec = await gpuExecutorFactory({ loadModel: (d, o) => { options.push(o); return d === dir ? one : two; } })({ role: 'transformer', onnx: dir, compiled: dir, batched: `${dir}-b2`, concurrentRuns: 2 });
    expect((options[0] as { replicas?: number }).replicas).toBeUndefined(); // no second arena for the batch-1 module
    expect((options[1] as { weightsFrom?: unknown }).weightsFrom).toBe(one); // the batch-2 module reads the batch-1 module's weights
    const outs = await exec.runMany!([{ x: sample(1) }, { x: sample(3) }]);
    expect(outs.map((o) => [o.y.shape, Array.from(o.y.data as Float32Array)])).toEqual([[[1, 2], [1, 1.5]], [[1, 2], [3, 3.5]]]);
    await exec.run({ x: sample(5) });
    const loop = { inputs: [{}, {}], latentsInput: 'x', timestepInput: 't', latents: new Float32Array(2), latentsShape: [1, 2], sigmas: Float32Array.of(1, 0), timesteps: Float32Array.of(1) };
    await exec.denoise!(loop);
    await exec.denoise!({ ...loop, inputs: [{}] });
    await exec.release();
    expect(events).toEqual(['b2 run [2,2] 1,1.5,3,3.5', 'b1 run', 'b2 denoise 2', 'b1 denoise 1', 'b2 close', 'b1 close']);
  });

  it('a batch-2 module that fails to load releases the batch-1 module and throws', async () => {
    const events: string[] = [];
    const one: CompiledModule = { run: () => ({}), close: () => events.push('b1 close') };
    const factory = gpuExecutorFactory({ loadModel: (d) => { if (d !== dir) throw new Error('weight \'w\': no such entry'); return one; } });
    await expect(factory({ role: 'transformer', onnx: dir, compiled: dir, batched: `${dir}-b2` })).rejects.toThrow(/no such entry/);
    expect(events).toEqual(['b1 close']);
  });
});

describe('GPU executor with input-shape variants (GraphRef.variants: the transformer for shorter texts)', () => {
  // Arenas as the compiler sizes them: the batch-2 module of the long text's is the largest.
  const module = (name: string, text: number, batch = 1) => {
    const d = mkdtempSync(join(tmpdir(), `gpu-var-${name}-`));
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({
      inputs: { x: `float32[${batch},2]`, text: `float32[${batch},${text}]` }, outputs: { y: `float32[${batch},2]` }, memory: { arenaBytes: 100 * batch * text },
    }));
    return d;
  };
  const [long, longCfg, short, shortCfg] = [module('long', 4), module('long-cfg', 4, 2), module('short', 2), module('short-cfg', 2, 2)];
  const names = new Map([[long, 'long'], [longCfg, 'long-cfg'], [short, 'short'], [shortCfg, 'short-cfg']]);
  const ref = { role: 'transformer' as const, onnx: long, compiled: long, batched: longCfg, variants: [{ compiled: short, batched: shortCfg }], concurrentRuns: 2 };
  const set = (text: number) => ({ x: new Tensor('float32', [1, 2], Float32Array.of(1, 2)), text: new Tensor('float32', [1, text], new Float32Array(text)) });

  it('loads every variant over the first module\'s weights and in its arena (allocated for the largest), sends each call to the module of its shapes, lists the variants, closes borrowers first', async () => {
    const events: string[] = [];
    const loaded = new Map<unknown, string>();
    const exec = await gpuExecutorFactory({
      loadModel: (d, o) => {
        const name = names.get(d)!;
        events.push(`load ${name}${o?.weightsFrom ? ` over ${loaded.get(o.weightsFrom)}` : ''}${o?.arenaFrom ? ` in ${loaded.get(o.arenaFrom)}'s arena` : ''}${o?.arenaBytes ? `, arena ${o.arenaBytes} bytes` : ''}`);
        const m: CompiledModule = {
          run: (g) => { events.push(`${name} run [${g.text.shape}]`); return { y: g.x }; },
          denoise: (l) => { events.push(`${name} denoise ${l.inputs.length}`); return new Float32Array(1); },
          close: () => events.push(`close ${name}`),
        };
        loaded.set(m, name);
        return m;
      },
    })(ref);
    expect(exec.variants?.map((v) => v.map((i) => `${i.name}[${i.shape}]`))).toEqual([['x[1,2]', 'text[1,2]']]);
    // Warm-up: every module runs once on zeros of its shapes, the first too (a first request with a short prompt never reaches it).
    await exec.warmUp!();
    expect(events.splice(4)).toEqual(['long run [1,4]', 'long-cfg run [2,4]', 'short run [1,2]', 'short-cfg run [2,2]']);
    await exec.run(set(2));
    await exec.run(set(4));
    await exec.runMany!([set(2), set(2)]);
    await exec.runMany!([set(4), set(4)]);
    const loop = { latentsInput: 'x', timestepInput: 't', latents: new Float32Array(2), latentsShape: [1, 2], sigmas: Float32Array.of(1, 0), timesteps: Float32Array.of(1) };
    await exec.denoise!({ ...loop, inputs: [{ text: set(2).text }, { text: set(2).text }] });
    await exec.denoise!({ ...loop, inputs: [{ text: set(4).text }] });
    await expect(exec.run(set(3))).rejects.toThrow(/no compiled variant takes x \[1,2\], text \[1,3\]; they take: x \[1,2\], text \[1,4\] \| x \[1,2\], text \[1,2\]/);
    await exec.release();
    expect(events).toEqual([
      'load long, arena 800 bytes', 'load long-cfg over long in long\'s arena', 'load short over long in long\'s arena', 'load short-cfg over long in long\'s arena',
      'short run [1,2]', 'long run [1,4]', 'short-cfg run [2,2]', 'long-cfg run [2,4]', 'short-cfg denoise 2', 'long denoise 1',
      'close short-cfg', 'close short', 'close long-cfg', 'close long',
    ]);
  });

  it('without batch-2 modules (concurrentRuns 2): every variant gets the replicas, and pairs and loops of two sets go to the variant of their shapes', async () => {
    const events: string[] = [];
    const replicas = new Map<string, number | undefined>();
    const exec = await gpuExecutorFactory({
      loadModel: (d, o) => {
        const name = names.get(d)!;
        replicas.set(name, o?.replicas);
        return {
          run: (g) => { events.push(`${name} run [${g.text.shape}]`); return { y: g.x }; },
          runMany: (list) => { events.push(`${name} runMany ${list.map((g) => `[${g.text.shape}]`).join(' ')}`); return list.map((g) => ({ y: g.x })); },
          denoise: (l) => { events.push(`${name} denoise ${l.inputs.length}`); return new Float32Array(1); },
          close: () => undefined,
        };
      },
    })({ role: 'transformer', onnx: long, compiled: long, variants: [{ compiled: short }], concurrentRuns: 2 });
    expect(Object.fromEntries(replicas)).toEqual({ long: 2, short: 2 });
    await exec.warmUp!(); // each module on both replicas
    expect(events.splice(0)).toEqual(['long runMany [1,4] [1,4]', 'short runMany [1,2] [1,2]']);
    await exec.runMany!([set(2), set(2)]);
    await exec.runMany!([set(4), set(4)]);
    const loop = { latentsInput: 'x', timestepInput: 't', latents: new Float32Array(2), latentsShape: [1, 2], sigmas: Float32Array.of(1, 0), timesteps: Float32Array.of(1) };
    await exec.denoise!({ ...loop, inputs: [{ text: set(2).text }, { text: set(2).text }] });
    await exec.release();
    expect(events).toEqual(['short runMany [1,2] [1,2]', 'long runMany [1,4] [1,4]', 'short denoise 2']);
  });

  it('image sizes whose text inputs agree: the denoising loop goes to the variant of its latents\' shape', async () => {
    const sized = (name: string, tokens: number) => {
      const d = mkdtempSync(join(tmpdir(), `gpu-size-${name}-`));
      writeFileSync(join(d, 'manifest.json'), JSON.stringify({ inputs: { x: `float32[1,${tokens},2]`, text: 'float32[1,4]' }, outputs: { y: `float32[1,${tokens},2]` } }));
      return d;
    };
    const [square, wide] = [sized('square', 16), sized('wide', 12)];
    const events: string[] = [];
    const exec = await gpuExecutorFactory({
      loadModel: (d) => ({
        run: () => ({}),
        denoise: (l) => { events.push(`${d === square ? 'square' : 'wide'} denoise [${l.latentsShape}]`); return new Float32Array(l.latents.length); },
        close: () => undefined,
      }),
    })({ role: 'transformer', onnx: square, compiled: square, variants: [{ compiled: wide }] });
    const loop = (tokens: number) => ({ inputs: [{ text: new Tensor('float32', [1, 4], new Float32Array(4)) }], latentsInput: 'x', timestepInput: 't',
      latents: new Float32Array(tokens * 2), latentsShape: [1, tokens, 2], sigmas: Float32Array.of(1, 0), timesteps: Float32Array.of(1) });
    await exec.denoise!(loop(12));
    await exec.denoise!(loop(16));
    expect(events).toEqual(['wide denoise [1,12,2]', 'square denoise [1,16,2]']);
    await exec.release();
  });

  it('a landscape size and its portrait (the same input shapes): forSize keeps each size\'s modules, for runs, pairs and the loop; a size without modules is refused', async () => {
    const sized = (name: string) => {
      const d = mkdtempSync(join(tmpdir(), `gpu-orient-${name}-`));
      writeFileSync(join(d, 'manifest.json'), JSON.stringify({ inputs: { x: 'float32[1,12,2]', text: 'float32[1,4]' }, outputs: { y: 'float32[1,12,2]' } }));
      return d;
    };
    const [wide, wideCfg, tall, tallCfg] = [sized('wide'), sized('wide-cfg'), sized('tall'), sized('tall-cfg')];
    const name = new Map([[wide, 'wide'], [wideCfg, 'wide-cfg'], [tall, 'tall'], [tallCfg, 'tall-cfg']]);
    const events: string[] = [];
    const exec = await gpuExecutorFactory({
      loadModel: (d) => ({
        run: (g) => { events.push(`${name.get(d)} run`); return { y: g.x }; },
        denoise: (l) => { events.push(`${name.get(d)} denoise ${l.inputs.length}`); return new Float32Array(l.latents.length); },
        close: () => undefined,
      }),
    })({ role: 'transformer', onnx: wide, compiled: wide, batched: wideCfg, size: '48x32', variants: [{ compiled: tall, batched: tallCfg, size: '32x48' }] });
    const set = () => ({ x: new Tensor('float32', [1, 12, 2], new Float32Array(24)), text: new Tensor('float32', [1, 4], new Float32Array(4)) });
    const loop = { inputs: [{ text: set().text }], latentsInput: 'x', timestepInput: 't', latents: new Float32Array(24), latentsShape: [1, 12, 2], sigmas: Float32Array.of(1, 0), timesteps: Float32Array.of(1) };
    // Without a size the shapes cannot tell them apart: the first module takes it.
    await exec.run(set());
    const portrait = exec.forSize!('32x48'), landscape = exec.forSize!('48x32');
    await portrait.run(set());
    await portrait.denoise!(loop);
    await portrait.runMany!([set(), set()]);
    await landscape.denoise!({ ...loop, inputs: [loop.inputs[0], loop.inputs[0]] });
    expect(events).toEqual(['wide run', 'tall run', 'tall denoise 1', 'tall-cfg run', 'wide-cfg denoise 2']);
    expect(portrait.description).toMatch(/ at 32x48$/);
    expect(() => exec.forSize!('64x64')).toThrow(/no module compiled for size 64x64 \(has 48x32, 32x48\)/);
    await exec.release();
  });

  it('warm-up placeholders: zeros in float inputs, ones in integer and bool ones (masks keep every token), symbolic dims 1', () => {
    const p = placeholders([
      { name: 'h', dtype: 'bfloat16', shape: [1, 2] }, { name: 'm', dtype: 'int64', shape: [1, 'n'] },
      { name: 'u', dtype: 'uint64', shape: [2] }, { name: 'i', dtype: 'int32', shape: [2] }, { name: 'b', dtype: 'bool', shape: [2] },
    ]);
    expect(Object.entries(p).map(([n, t]) => `${n} ${t.dtype}[${t.shape}] ${t.toNumbers().join(',')}`)).toEqual([
      'h bfloat16[1,2] 0,0', 'm int64[1,1] 1', 'u uint64[2] 1,1', 'i int32[2] 1,1', 'b bool[2] 1,1',
    ]);
  });

  it('a variant without a manifest is named before anything loads', async () => {
    const loads: string[] = [];
    const missing = join(mkdtempSync(join(tmpdir(), 'gpu-var-missing-')), 'transformer_t16');
    const factory = gpuExecutorFactory({ loadModel: (d) => { loads.push(d); return { run: () => ({}), close: () => undefined }; } });
    await expect(factory({ ...ref, variants: [{ compiled: missing }] })).rejects.toThrow(new RegExp(`${missing}/manifest.json: expected a compiled module's manifest \\(npx compile writes it\\), found no such file`));
    expect(loads).toEqual([]);
  });

  it('a variant that fails to load releases everything loaded before it and throws', async () => {
    const events: string[] = [];
    const factory = gpuExecutorFactory({
      loadModel: (d) => {
        if (d === shortCfg) throw new Error('weight \'w\': no such entry');
        return { run: () => ({}), close: () => events.push(`close ${names.get(d)}`) };
      },
    });
    await expect(factory(ref)).rejects.toThrow(/no such entry/);
    expect(events).toEqual(['close short', 'close long-cfg', 'close long']);
  });
});

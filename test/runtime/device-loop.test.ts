/**
 * runtime/gpu/denoise.ts on a recording stand-in driver (no GPU): the order of what the device loop
 * enqueues (uploads on replica 0's stream, the first latents input, per step the timestep copies
 * and graphs of both replicas, the cross-stream events around the CFG kernel, one step enqueued
 * ahead of the one waited for, each step waited for by queries that let Node's event loop run, its device
 * time from the events that end it and the step before), and its cleanup when onStep throws (the enqueued step drains, no
 * read back, every event destroyed, both buffers freed, both replicas' staging cleared), the step
 * memo's keys and launches. The GPU check of the values is test/gpu/denoise-loop.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { DenoiseLoop } from '../../runtime/executor/types.ts';
import type { Manifest } from '../../runtime/gpu/artifact.ts';
import type { Driver } from '../../runtime/gpu/cuda.ts';
import { type LoopDevice, deviceDenoise } from '../../runtime/gpu/denoise.ts';

// Each launch's arguments (KernelParams' 8-byte slots, low 32 bits), captured where denoise.ts builds them.
const launched: number[][] = [];
vi.mock('../../runtime/gpu/cuda.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../runtime/gpu/cuda.ts')>();
  return {
    ...real,
    launch: (...a: Parameters<typeof real.launch>) => {
      const v = a[6].values;
      launched.push(Array.from({ length: v.length / 8 }, (_, i) => Number(v.readBigUInt64LE(8 * i) & 0xffffffffn)));
      return real.launch(...a);
    },
  };
});
import type { HostIo } from '../../runtime/gpu/model.ts';

/** A driver that records each call by name, naming streams, events and kernels instead of pointers. */
function recorder() {
  const log: string[] = [];
  const args: number[][] = []; // each launch's arguments (low 32 bits)
  const names = new Map<unknown, string>([[11n, 's0'], [12n, 's1'], [21n, 'euler'], [22n, 'cfg']]);
  let events = 0, memory = 0x1000;
  const asked = new Set<unknown>();
  const name = (x: unknown) => names.get(x) ?? String(x);
  const d = {
    // cuEventQuery: not ready the first time an event is asked (the loop yields to Node's event loop), done the second.
    rc: (fn: string, box: unknown, bytes: number) => {
      if (fn === 'cuEventQuery') { log.push(`cuEventQuery ${name(box)}`); return asked.has(box) ? 0 : (asked.add(box), 600); }
      (box as number[])[0] = memory; log.push(`${fn} ${bytes}`); memory += 0x1000; return 0;
    },
    call: (fn: string, ...a: unknown[]) => {
      if (fn === 'cuLaunchKernel') {
        log.push(`launch ${name(a[0])} ${name(a[8])}`);
        if (launched.length) args.push(launched.shift()!);
      }
      else if (fn === 'cuEventRecord') log.push(`record ${name(a[0])} ${name(a[1])}`);
      else if (fn === 'cuStreamWaitEvent') log.push(`wait ${name(a[0])} ${name(a[1])}`);
      else if (fn === 'cuEventSynchronize' || fn === 'cuEventDestroy') log.push(`${fn} ${name(a[0])}`);
      else if (fn === 'cuStreamSynchronize') log.push(`${fn} ${name(a[0])}`);
      else if (fn === 'cuMemcpyDtoDAsync' || fn === 'cuMemcpyHtoDAsync') log.push(`${fn} ${name(a[3])}`);
      else log.push(fn);
    },
  };
  // out(fn): a new event handle (the loop creates nothing else through it), named e0, e1, ...
  const out = (fn: string) => { const e = BigInt(100 + events); names.set(e, `e${events++}`); log.push(fn); return e; };
  // elapsedMs: the time between two events as 10 x the end event's number (e3 -> 30 ms).
  const elapsedMs = (start: unknown, end: unknown) => { log.push(`elapsed ${name(start)} ${name(end)}`); return 10 * Number(name(end).slice(1)); };
  return { log, args, d: { ...d, out, elapsedMs } as unknown as Driver };
}

const io = (name: string, dtype: string, shape: number[], offset: number) => ({ name, dtype, shape, offset, bytes: shape.reduce((a, b) => a * b, 1) * (dtype === 'float32' ? 4 : 2) });
const manifest = {
  model: 'stand-in',
  io: { inputs: [io('hidden_states', 'bfloat16', [1, 4, 2], 0), io('timestep', 'float32', [1], 64), io('text', 'float32', [1, 2], 128)], outputs: [io('sample', 'bfloat16', [1, 4, 2], 256)] },
} as unknown as Manifest;

function device(log: string[], d: Driver): LoopDevice {
  const host = (r: number): HostIo => ({
    stage: (given, except) => log.push(`stage r${r} ${Object.keys(given).filter((k) => !except?.has(k)).join(',')}`),
    clear: () => log.push(`clear r${r}`),
    run: () => ({}), collect: () => ({}), settle: () => undefined,
  });
  return {
    d, manifest, multiprocessors: 132, euler: 21n, cfgEuler: 22n, batch: 1,
    replicas: [{ stream: 11n, arena: 0x10000, host: host(0) }, { stream: 12n, arena: 0x20000, host: host(1) }],
    prepare: (k) => log.push(`prepare ${k}`),
    launchPlan: (k) => log.push(`graph r${k}`),
    checkInputs: () => undefined,
    memo: null,
  };
}

const loop = (over: Partial<DenoiseLoop> = {}): DenoiseLoop => ({
  inputs: [{ text: Tensor.zeros('float32', [1, 2]) }, { text: Tensor.zeros('float32', [1, 2]) }],
  latentsInput: 'hidden_states', timestepInput: 'timestep',
  latents: new Float32Array(8), latentsShape: [1, 4, 2], sigmas: Float32Array.of(1, 0.5, 0), timesteps: Float32Array.of(1, 0.5),
  cfg: { scale: 4, channels: 2 },
  ...over,
});

describe('the denoising loop on the device (stand-in driver)', () => {
  it('two CFG sets: uploads, then per step each replica\'s timestep copy and graph, the CFG kernel between two events, one step ahead', async () => {
    const { log, d } = recorder();
    const steps: [number, number | undefined][] = [];
    setImmediate(() => log.push('event loop ran')); // queued before the loop starts: runs while step 0 is not ready
    await deviceDenoise(device(log, d), loop({ onStep: (s, _l, ms) => { log.push(`onStep ${s}`); steps.push([s, ms]); } }));
    // e0, e1: the cross-stream events; e2, e3, e4: replica 0's stream before step 0, after step 0, after step 1.
    const step = (end: string) => [
      'stage r0 text', 'cuMemcpyDtoDAsync s0', 'graph r0', 'stage r1 text', 'cuMemcpyDtoDAsync s1', 'graph r1',
      'record e0 s1', 'wait s0 e0', 'launch cfg s0', 'record e1 s0', 'wait s1 e1', `record ${end} s0`,
    ];
    expect(log).toEqual([
      'cuMemAlloc 32', 'cuMemAlloc 8', ...new Array(5).fill('cuEventCreate'),
      'cuMemcpyHtoDAsync s0', 'cuMemcpyHtoDAsync s0', 'prepare 2',
      'launch euler s0', 'record e1 s0', 'wait s1 e1', // the first latents input into both replicas' slots
      'record e2 s0', ...step('e3'), ...step('e4'), // step 1 is enqueued before step 0 is waited for
      'cuEventQuery e3', 'event loop ran', 'cuEventQuery e3', 'elapsed e2 e3', 'onStep 1',
      'cuEventQuery e4', 'cuEventQuery e4', 'elapsed e3 e4', 'onStep 2',
      'cuStreamSynchronize s0', 'cuStreamSynchronize s1', 'cuMemcpyDtoH',
      'clear r0', 'clear r1', ...['e0', 'e1', 'e2', 'e3', 'e4'].map((e) => `cuEventDestroy ${e}`), 'cuMemFree', 'cuMemFree',
    ]);
    expect(steps).toEqual([[1, 30], [2, 40]]); // each step's device time: between the events that end the step before and it
  });

  it('an exception from onStep drains the enqueued step, reads nothing back, frees everything and is rethrown', async () => {
    const { log, d } = recorder();
    const abort = new Error('aborted by the client');
    await expect(deviceDenoise(device(log, d), loop({ onStep: () => { throw abort; } }))).rejects.toThrow(abort);
    const after = log.slice(log.lastIndexOf('elapsed e2 e3') + 1);
    expect(after).toEqual([
      'cuStreamSynchronize s0', 'cuStreamSynchronize s1',
      'clear r0', 'clear r1', ...['e0', 'e1', 'e2', 'e3', 'e4'].map((e) => `cuEventDestroy ${e}`), 'cuMemFree', 'cuMemFree',
    ]);
  });

  it('one set without CFG: the Euler kernel on replica 0 only; a loop the artifact cannot run is refused before anything is allocated', async () => {
    const { log, d } = recorder();
    await deviceDenoise(device(log, d), loop({ inputs: [{ text: Tensor.zeros('float32', [1, 2]) }], cfg: undefined }));
    expect(log.filter((l) => l.startsWith('launch'))).toEqual(['launch euler s0', 'launch euler s0', 'launch euler s0']);
    expect(log.some((l) => l.includes('s1'))).toBe(false);
    const refused = recorder();
    await expect(deviceDenoise(device(refused.log, refused.d), loop({ cfg: undefined }))).rejects.toThrow(/denoise \(stand-in\): expected CFG exactly when there are two input sets/);
    await expect(deviceDenoise(device(refused.log, refused.d), loop({ timesteps: Float32Array.of(1) }))).rejects.toThrow(/expected 2 sigmas for 1 steps/);
    expect(refused.log).toEqual([]);
  });
});

describe('the denoising loop on a model compiled at batch 2 (true CFG in one run)', () => {
  const batchIo = {
    model: 'stand-in b2',
    io: { inputs: [io('hidden_states', 'bfloat16', [2, 4, 2], 0), io('timestep', 'float32', [2], 64), io('text', 'float32', [2, 2], 128)], outputs: [io('sample', 'bfloat16', [2, 4, 2], 256)] },
  } as unknown as Manifest;

  it('one replica, one stream: the two sets staged stacked, both samples\' timestep in one copy, the CFG kernel reading the output\'s two halves and writing both latents halves', async () => {
    const { log, args, d } = recorder();
    const dev = { ...device(log, d), manifest: batchIo, batch: 2, replicas: device(log, d).replicas.slice(0, 1) };
    const staged: string[] = [];
    dev.replicas[0].host = { ...dev.replicas[0].host, stage: (given, except) => { staged.push(Object.entries(given).filter(([k]) => !except?.has(k)).map(([k, t]) => `${k} [${t.shape}] ${Array.from(t.data as Float32Array)}`).join()); } };
    const sets = [{ text: new Tensor('float32', [1, 2], Float32Array.of(1, 2)) }, { text: new Tensor('float32', [1, 2], Float32Array.of(3, 4)) }];
    await deviceDenoise(dev, loop({ inputs: sets }));
    expect(staged).toEqual(['text [2,2] 1,2,3,4', 'text [2,2] 1,2,3,4']); // the same stacked Tensor each step (staged once by the host's identity check)
    expect(log.filter((l) => l.includes('s1') || l.startsWith('wait'))).toEqual([]); // no second stream, no cross-stream waits
    expect(log.filter((l) => l.startsWith('cuMemAlloc'))).toEqual(['cuMemAlloc 32', 'cuMemAlloc 16']); // float32 latents; 2 steps x 2 samples of float32 timesteps
    expect(log.filter((l) => l.startsWith('launch'))).toEqual(['launch euler s0', 'launch cfg s0', 'launch cfg s0']);
    const arena = 0x10000, latBytes = 8 * 2, outBytes = 8 * 2; // 8 bfloat16 values a sample
    const [euler, cfg] = args;
    expect([euler[4], euler[5]]).toEqual([arena + 0, arena + latBytes]); // the first latents into both samples' halves
    expect([cfg[1], cfg[2]]).toEqual([arena + 256, arena + 256 + outBytes]); // the conditional and unconditional predictions
    expect([cfg[6], cfg[7]]).toEqual([arena + 0, arena + latBytes]);
  });

  it('refuses one input set on a batch-2 model, and sets that are not one sample each', async () => {
    const { log, d } = recorder();
    const dev = { ...device(log, d), manifest: batchIo, batch: 2 };
    await expect(deviceDenoise(dev, loop({ inputs: [{ text: Tensor.zeros('float32', [1, 2]) }], cfg: undefined }))).rejects.toThrow(/a batch-2 model to run the two input sets of true CFG/);
    await expect(deviceDenoise(dev, loop({ inputs: [{ text: Tensor.zeros('float32', [2, 2]) }, { text: Tensor.zeros('float32', [2, 2]) }] }))).rejects.toThrow(/input 'text' of set 0 .*leading 1/);
    expect(log).toEqual([]);
  });
});

describe('the denoising loop with a step memo', () => {
  const withMemo = (log: string[], d: Driver, inputs: string[], fits = true): LoopDevice => ({
    ...device(log, d),
    memo: {
      inputs,
      reserve: (keys) => { log.push(`reserve ${keys.map((k) => `r${k.replica} ${k.key}`).join(', ')}`); return fits; },
      launch: (k, key) => log.push(`memo r${k} ${key}`),
    },
  });
  const f32hex = (x: number) => Buffer.from(Float32Array.of(x).buffer).toString('hex');

  it('reserves every step\'s key before the first step, then runs each step under its key (the timestep\'s bytes, a small input\'s)', async () => {
    const { log, d } = recorder();
    const text = Tensor.zeros('float32', [1, 2]);
    await deviceDenoise(withMemo(log, d, ['timestep', 'text']), loop({ inputs: [{ text }, { text }] }));
    const key = (t: number) => `${f32hex(t)}|text=${'00'.repeat(8)}`;
    expect(log.filter((l) => l.startsWith('reserve') || l.startsWith('memo') || l.startsWith('graph') || l.startsWith('prepare'))).toEqual([
      'prepare 2', `reserve r0 ${key(1)}, r0 ${key(0.5)}, r1 ${key(1)}, r1 ${key(0.5)}`,
      `memo r0 ${key(1)}`, `memo r1 ${key(1)}`, `memo r0 ${key(0.5)}`, `memo r1 ${key(0.5)}`,
    ]);
  });

  it('runs the full steps where the request\'s keys do not fit the memo', async () => {
    const { log, d } = recorder();
    await deviceDenoise(withMemo(log, d, ['timestep'], false), loop());
    expect(log.filter((l) => l.startsWith('memo'))).toEqual([]);
    expect(log.filter((l) => l.startsWith('graph'))).toEqual(['graph r0', 'graph r1', 'graph r0', 'graph r1']);
  });

  it('is not used where a key input is the latents or missing from the input sets', async () => {
    for (const inputs of [['timestep', 'hidden_states'], ['timestep', 'guidance']]) {
      const { log, d } = recorder();
      await deviceDenoise(withMemo(log, d, inputs), loop());
      expect(log.filter((l) => l.startsWith('memo') || l.startsWith('reserve'))).toEqual([]);
      expect(log.filter((l) => l.startsWith('graph'))).toEqual(['graph r0', 'graph r1', 'graph r0', 'graph r1']);
    }
  });
});

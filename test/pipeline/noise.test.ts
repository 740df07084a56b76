/**
 * The seeded Gaussian noise (runtime/pipeline/noise.ts): same seed -> same bytes, seeds differ,
 * fill's single loop = the per-value algorithm (and the full-size draws' hashes from before it),
 * standard-normal statistics, the per-image seed rule, and seed range checks; fillAsync (the parts
 * drawn on worker threads) = fill, the stream continuing across calls, a dying pool costs no request, and
 * an idle pool lets its process exit.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GaussianNoise, NoisePool, SEED_LIMIT, imageSeed } from '../../runtime/pipeline/noise.ts';
import { ROOT } from '../../runtime/paths.ts';

describe('GaussianNoise', () => {
  it('is a pure function of the seed', () => {
    const a = new GaussianNoise(42).fill(10_001), b = new GaussianNoise(42).fill(10_001);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const c = new GaussianNoise(43).fill(10_001);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
  it('equals a C build of the same algorithm (splitmix32 -> xoshiro128**, Box-Muller, float32)', () => {
    // Values printed by the reference C code (Vigna's xoshiro128** + splitmix32, libm) for seed 0.
    expect(Array.from(new GaussianNoise(0).fill(4))).toEqual([0.48854631185531616, 0.038372181355953217, 2.5868475437164307, 0.39985963702201843]);
  });
  it('fill = nextNormal value by value (a plain reference of the algorithm), across odd lengths and interleaved calls', () => {
    // The generator as first written: one method call per value, state in four numbers.
    const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
    const reference = (seed: number) => {
      let z = seed >>> 0;
      const sm = () => { z = (z + 0x9e3779b9) >>> 0; let t = z; t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0; t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0; return (t ^ (t >>> 16)) >>> 0; };
      let s0 = sm(), s1 = sm(), s2 = sm(), s3 = sm();
      if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
      const next = () => {
        const r = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
        const t = (s1 << 9) >>> 0;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 = (s2 ^ t) >>> 0; s3 = rotl(s3 >>> 0, 11); s0 >>>= 0; s1 >>>= 0; s2 >>>= 0;
        return r;
      };
      const uniform = () => ((next() >>> 5) * 67108864 + (next() >>> 6) + 1) / 9007199254740992;
      let spare: number | undefined;
      return () => {
        if (spare !== undefined) { const v = spare; spare = undefined; return v; }
        const r = Math.sqrt(-2 * Math.log(uniform())), th = 2 * Math.PI * uniform();
        spare = Math.fround(r * Math.sin(th));
        return Math.fround(r * Math.cos(th));
      };
    };
    for (const seed of [0, 3, 42, SEED_LIMIT]) {
      const ref = reference(seed), g = new GaussianNoise(seed);
      const got = [...g.fill(5), g.nextNormal(), ...g.fill(7), g.nextNormal(), g.nextNormal(), ...g.fill(1000), ...g.fill(0), ...g.fill(1), ...g.fill(2)];
      expect(got).toEqual(Array.from({ length: got.length }, ref));
    }
    // The full-size draws hashed before the loop was rewritten (Flux.2 [128, 64, 64] seed 42, Qwen-Image [16, 128, 128] seed 2^32-1).
    const sha = (a: Float32Array) => createHash('sha256').update(new Uint8Array(a.buffer)).digest('hex');
    expect(sha(new GaussianNoise(42).fill(128 * 64 * 64))).toBe('8cd21c265040c152b90a391ae770903604b52fa630b885d04baad6d458fa441a');
    expect(sha(new GaussianNoise(SEED_LIMIT).fill(16 * 128 * 128))).toBe('05e57ccff2db572b740856ce5ba2f581fa6a633511f08e1a1be4f87b483b4215');
  });

  it('fillAsync on worker threads gives fill\'s values and leaves the stream where fill would', async () => {
    const pool = new NoisePool(3);
    try {
      while (!pool.ready) await new Promise((r) => setTimeout(r, 5));
      const shared = (x: Float32Array) => x.buffer instanceof SharedArrayBuffer;
      const same = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
      for (const [seed, n] of [[42, 128 * 64 * 64], [7, 65536 + 2], [SEED_LIMIT, 200_002]] as const) {
        // Even counts leave no spare: both draws go through the workers, the second from where the first and fill(6) left the stream.
        const a = new GaussianNoise(seed), b = new GaussianNoise(seed);
        const got = [await b.fillAsync(n, pool), b.fill(6), await b.fillAsync(n, pool), b.fill(3)];
        const want = [a.fill(n), a.fill(6), a.fill(n), a.fill(3)];
        expect([shared(got[0]), shared(got[2])]).toEqual([true, true]);
        want.forEach((w, i) => expect(same(got[i], w)).toBe(true));
      }
      // An odd count ends with a spare: that draw is the workers', the next (spare first) this thread's; small ones stay here.
      const a = new GaussianNoise(3), b = new GaussianNoise(3);
      const got = [await b.fillAsync(70_001, pool), await b.fillAsync(70_000, pool), await b.fillAsync(1000, pool)];
      expect(got.map(shared)).toEqual([true, false, false]);
      [a.fill(70_001), a.fill(70_000), a.fill(1000)].forEach((w, i) => expect(same(got[i], w)).toBe(true));
      // Overlapping fills on one pool (two requests at once) each get their own values.
      const [x, y] = await Promise.all([new GaussianNoise(5).fillAsync(300_000, pool), new GaussianNoise(6).fillAsync(300_000, pool)]);
      expect([same(x, new GaussianNoise(5).fill(300_000)), same(y, new GaussianNoise(6).fill(300_000))]).toEqual([true, true]);
      // The full-size Flux.2 draw hashed above, through the workers.
      const z = await new GaussianNoise(42).fillAsync(128 * 64 * 64, pool);
      expect(createHash('sha256').update(new Uint8Array(z.buffer, 0, z.byteLength)).digest('hex')).toBe('8cd21c265040c152b90a391ae770903604b52fa630b885d04baad6d458fa441a');
      // A part that fails (a dead worker): the same values, drawn again on this thread from the same start.
      const failing = Object.assign(Object.create(pool), { ready: true, size: 3, run: () => Promise.reject(new Error('noise worker exited (code 1)')) }) as NoisePool;
      const c = new GaussianNoise(9), fallback = await c.fillAsync(300_000, failing);
      expect(shared(fallback)).toBe(false);
      expect(same(fallback, new GaussianNoise(9).fill(300_000))).toBe(true);
      expect(same(c.fill(4), (() => { const g = new GaussianNoise(9); g.fill(300_000); return g.fill(4); })())).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('an idle pool never keeps a process alive: one whose workers started and drew nothing exits on its own', () => {
    // (A pipeline given its noise never draws.) The workers' message listeners are attached before they are
    // unreferenced: attaching one references the worker's port again, and the process then waited forever.
    const script = join(mkdtempSync(join(tmpdir(), 'noise-pool-')), 'idle.mts');
    writeFileSync(script, `import { NoisePool } from ${JSON.stringify(join(ROOT, 'runtime', 'pipeline', 'noise.ts'))};
const pool = new NoisePool(2);
while (!pool.ready) await new Promise((r) => setTimeout(r, 5));
console.log('started');`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, 'killed at the timeout: the process stayed alive').toBeNull();
    expect([r.status, r.stdout.trim()]).toEqual([0, 'started']);
  });

  it('has mean 0, variance 1, symmetric tails', () => {
    const x = new GaussianNoise(7).fill(200_000);
    let s = 0, s2 = 0, beyond3 = 0;
    for (const v of x) { s += v; s2 += v * v; if (Math.abs(v) > 3) beyond3++; }
    const mean = s / x.length, variance = s2 / x.length - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.01);
    expect(beyond3 / x.length).toBeGreaterThan(0.002); // P(|z| > 3) = 0.0027
    expect(beyond3 / x.length).toBeLessThan(0.0035);
  });
  it('image k of a request uses (seed + k) mod 2^32; seeds outside [0, 2^32) are rejected', () => {
    expect(imageSeed(10, 2)).toBe(12);
    expect(imageSeed(SEED_LIMIT, 1)).toBe(0);
    expect(() => new GaussianNoise(-1)).toThrow(RangeError);
    expect(() => new GaussianNoise(SEED_LIMIT + 1)).toThrow(RangeError);
    expect(() => new GaussianNoise(1.5)).toThrow(RangeError);
  });
});

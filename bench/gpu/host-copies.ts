/**
 * What a request's host <-> device copies cost on the GPU host, by size and kind of host memory: for
 * 1, 2, 3, 4 and 16 MiB (a VAE input, latents, an RGB8 image, Qwen-Image's text states, Flux.2's prompt
 * embeddings), cuMemcpyHtoD and cuMemcpyDtoH from and to (a) a reused pageable Buffer, (b) a fresh
 * pageable Buffer each time (as hostIo's collect allocates), (c) a page-locked buffer (cuMemHostRegister),
 * and (d) the page-locked buffer plus a host memcpy to or from a reused pageable one (a bounce buffer).
 * Median of 20 each, in ms and GB/s.
 *
 *   node bench/gpu/host-copies.mjs   (bundled by esbuild; no Node on the host)
 */
import { alloc, alignedBuffer, openDevice } from '../../runtime/gpu/cuda.ts';

const device = openDevice(0), d = device.driver;
const MiB = 1 << 20, REPS = 20;
const dev = alloc(d, 16 * MiB, 'copies');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (f: () => void) => { f(); const t: number[] = []; for (let i = 0; i < REPS; i++) { const s = performance.now(); f(); t.push(performance.now() - s); } return median(t); };
const locked = alignedBuffer(16 * MiB, 4096);
const lockRc = d.rc('cuMemHostRegister', locked, locked.length, 0);
console.log(`device: ${device.name}; page-locking a 16 MiB buffer: ${lockRc === 0 ? 'ok' : d.describe(lockRc)}`);
const reused = Buffer.alloc(16 * MiB, 1);
for (const mib of [1, 2, 3, 4, 16]) {
  const n = mib * MiB;
  const row = (what: string, h2d: () => void, d2h: () => void) => {
    const [a, b] = [time(h2d), time(d2h)];
    return `${what} H2D ${a.toFixed(3)} ms (${(n / 1e6 / a).toFixed(2)} GB/s), D2H ${b.toFixed(3)} ms (${(n / 1e6 / b).toFixed(2)} GB/s)`;
  };
  console.log(`${mib} MiB:`);
  console.log(`  ${row('reused pageable:', () => d.call('cuMemcpyHtoD', dev, reused, n), () => d.call('cuMemcpyDtoH', reused, dev, n))}`);
  console.log(`  ${row('fresh pageable: ', () => d.call('cuMemcpyHtoD', dev, Buffer.allocUnsafeSlow(n).fill(2), n), () => d.call('cuMemcpyDtoH', Buffer.allocUnsafeSlow(n), dev, n))}`);
  if (lockRc !== 0) continue;
  console.log(`  ${row('page-locked:    ', () => d.call('cuMemcpyHtoD', dev, locked, n), () => d.call('cuMemcpyDtoH', locked, dev, n))}`);
  console.log(`  ${row('bounce (locked + memcpy, fresh out):', () => { reused.copy(locked, 0, 0, n); d.call('cuMemcpyHtoD', dev, locked, n); }, () => { d.call('cuMemcpyDtoH', locked, dev, n); Buffer.from(locked.subarray(0, n)); })}`);
}
if (lockRc === 0) d.call('cuMemHostUnregister', locked);
process.exit(0);

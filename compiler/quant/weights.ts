/**
 * Streaming weight quantization: one external-data weight (bfloat16, float16 or float32, shape
 * [N, K], PyTorch Linear layout: a row per output channel, or stored transposed) into the layout the kernels read,
 * written to a file descriptor at a given offset.
 *
 *   fp8    codes   [N, K]     e4m3, row-major
 *          scales  [N]        fp32, one per output channel (scale = amax_row/448)
 *   nvfp4  codes   [N, K/2]   e2m1 packed, element 2i in the low nibble
 *          scales  [N, K/16]  e4m3 block-scale codes, row-major (cuBLASLt's swizzled block-scale
 *                             layout is applied at codegen, not here)
 *          global  fp32       per-tensor scale g = amax/(448·6)
 *
 * Each section starts at a multiple of `align` bytes (default 256) from the given offset;
 * quantizedLayout() computes the sections before anything is written, so an artifact writer can
 * place weights back to back. Numbers are exactly those of the in-memory quantizers of bulk.ts
 * (the same span kernels run on each chunk).
 *
 * Algorithm. The source is read with positioned reads of whole rows, at most `chunkBytes` at a time
 * (default 1 MiB: measured cheaper in CPU than 8 MiB, the chunk stays in cache), into buffers
 * allocated once per row range; each row is decoded to fp32 into a one-row buffer and quantized
 * from there. Memory is bounded by the chunk size (about 2 × chunkBytes plus a row per thread),
 * never by the weight. fp8 needs only a row's own amax, so each chunk is read once. nvfp4 needs the tensor amax first: a first streaming pass reads every chunk
 * and takes the amax from the bit patterns (no decoding), the second pass quantizes. A row longer
 * than a chunk is processed in segments (fp8 reads such a row twice: amax, then codes).
 * A stacked weight (fuse-linear's concatenation of several [n_i, K] weights along N: a fused QKV,
 * gate and up, the modulation GEMVs of every block) streams the same way, part by part, each part's
 * rows written where they sit in the stacked layout: per-row scales make every row's codes its own,
 * and nvfp4 takes its global scale over all parts first. So no fused weight is ever held in memory.
 * A weight stored [K, N] (an exporter's folded transpose: `transposed`) streams in blocks of output
 * rows, each read as K segments of the stored rows (at most 32 MiB of source a block), then
 * quantized row by row as above (transposedRange).
 * With workers (worker_threads), the rows are split into one contiguous range per worker; each
 * worker opens the source itself, runs the same loop on its range and writes its part of each
 * section with positioned writes to the shared descriptor; the main thread sums the partial
 * statistics. Workers start once per process (a lazy pool, unreferenced while idle).
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CompileError, type ErrorSite, fail } from '../errors.ts';
import { externalReads } from '../onnx/constants.ts';
import {
  amaxSource, decodeSource, decodeSourceAmax, type ErrorSums, fp8EncodeSpan, newErrorSums,
  NVFP4_BLOCK, nvfp4EncodeSpan, nvfp4GlobalScale, relativeL2FromSums, SOURCE_BYTES, type SourceDType,
} from './bulk.ts';
import { fp8Scale } from './formats.ts';

export type WeightFormat = 'fp8' | 'nvfp4';

/** A weight's bytes in an external data file. */
export interface ExternalWeight {
  /** The weight's name, for messages. */
  readonly name: string;
  readonly dtype: SourceDType;
  /** [N, K]: N output channels, K inputs. */
  readonly shape: readonly [number, number];
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  /** Stored as [K, N] (a folded transpose: output channel n is stored column n), not as [N, K]. */
  readonly transposed?: boolean;
}

/** A weight stored as row blocks in external data: part i holds the next parts[i].shape[0] rows (every part has the same K). */
export interface StackedWeight {
  /** The stacked weight's name, for messages. */
  readonly name: string;
  readonly parts: readonly ExternalWeight[];
}

export interface Section { readonly offset: number; readonly length: number }

export interface QuantizedLayout {
  readonly format: WeightFormat;
  readonly rows: number;
  readonly cols: number;
  /** fp8: e4m3 [N, K]; nvfp4: packed e2m1 [N, K/2]. */
  readonly codes: Section;
  /** fp8: fp32 [N]; nvfp4: e4m3 block-scale codes [N, K/16]. */
  readonly scales: Section;
  /** nvfp4 only: the fp32 global scale (4 bytes). */
  readonly globalScale?: Section;
  /** First byte after the last section. */
  readonly end: number;
}

export interface QuantizeWeightOptions {
  /** Largest source read, in bytes (default 1 MiB). */
  chunkBytes?: number;
  /** Worker threads (default: the machine's cores for weights of 4 M parameters or more, else 0 = this thread). */
  workers?: number;
  /** Section alignment in bytes (default 256). */
  align?: number;
}

export interface WeightQuantStats {
  readonly name: string;
  readonly format: WeightFormat;
  readonly rows: number;
  readonly cols: number;
  /** max |w| over the weight. */
  readonly amax: number;
  /** nvfp4: the fp32 global scale. */
  readonly globalScale?: number;
  /** ‖w − deq(q(w))‖ / ‖w‖. */
  readonly relL2: number;
  readonly layout: QuantizedLayout;
  /** Source bytes read (nvfp4 reads the weight twice) and the positioned reads that did it. */
  readonly bytesRead: number;
  readonly reads: number;
  /** The largest single read, in bytes (≤ chunkBytes, or one 16-element segment). */
  readonly maxReadBytes: number;
  readonly bytesWritten: number;
  readonly workers: number;
  readonly seconds: number;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
const DEFAULT_ALIGN = 256;
const WORKER_MIN_PARAMS = 4 << 20; // below this, starting a job on workers costs more than it saves

const roundUp = (v: number, a: number): number => Math.ceil(v / a) * a;

/** The sections a quantized [rows, cols] weight occupies when written at `offset`. */
export function quantizedLayout(format: WeightFormat, rows: number, cols: number, offset: number, align = DEFAULT_ALIGN): QuantizedLayout {
  const codesLen = format === 'fp8' ? rows * cols : (rows * cols) / 2;
  const scalesLen = format === 'fp8' ? rows * 4 : (rows * cols) / NVFP4_BLOCK;
  const codes = { offset: roundUp(offset, align), length: codesLen };
  const scales = { offset: roundUp(codes.offset + codesLen, align), length: scalesLen };
  if (format === 'fp8') return { format, rows, cols, codes, scales, end: scales.offset + scalesLen };
  const globalScale = { offset: roundUp(scales.offset + scalesLen, align), length: 4 };
  return { format, rows, cols, codes, scales, globalScale, end: globalScale.offset + 4 };
}

const SOURCE_TYPES: readonly string[] = ['bfloat16', 'float16', 'float32'];

function validate(w: ExternalWeight, format: WeightFormat): void {
  const where = `weight '${w.name}'`;
  if (!SOURCE_TYPES.includes(w.dtype)) fail(where, 'a bfloat16, float16 or float32 weight to quantize', w.dtype);
  const [n, k] = w.shape;
  if (w.shape.length !== 2 || !(n > 0) || !(k > 0) || !Number.isInteger(n) || !Number.isInteger(k)) fail(where, 'a non-empty [N, K] shape', `[${w.shape}]`);
  if (format === 'nvfp4' && k % NVFP4_BLOCK) {
    fail(where, `an input dimension K that is a multiple of ${NVFP4_BLOCK} for nvfp4 (16-element blocks along K)`, `shape [${n}, ${k}]`);
  }
  const need = n * k * SOURCE_BYTES[w.dtype];
  if (w.length !== need) fail(where, `${need} bytes for ${w.dtype}[${n}, ${k}]`, `an external data length of ${w.length}`);
}

function openSource(w: ExternalWeight): number {
  let fd: number;
  try {
    fd = openSync(w.path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(w.path, `the external data file holding weight '${w.name}'`, code === 'ENOENT' ? 'no such file' : String(e));
  }
  const size = fstatSync(fd).size;
  if (size < w.offset + w.length) {
    closeSync(fd);
    fail(w.path, `${w.length} bytes at offset ${w.offset} for weight '${w.name}'`, `a file of ${size} bytes`);
  }
  return fd;
}

// ---- the row-range loop (this thread or a worker) ---------------------------------------------

/** One contiguous range of rows; plain data, posted to workers as is. */
export interface RangeJob {
  readonly kind: 'amax' | 'quantize';
  readonly weight: ExternalWeight;
  readonly format: WeightFormat;
  readonly r0: number;
  readonly r1: number;
  readonly chunkBytes: number;
  readonly outFd: number;
  readonly layout: QuantizedLayout;
  /** nvfp4 global scale (quantize jobs). */
  readonly globalScale: number;
}

export interface RangeResult {
  amax: number;
  errSq: number;
  refSq: number;
  bytesRead: number;
  reads: number;
  maxReadBytes: number;
  bytesWritten: number;
}

/** Runs one range job synchronously. Throws CompileError for a short file. */
export function runRangeJob(job: RangeJob): RangeResult {
  const { weight: w, r0, r1, format } = job;
  const k = w.shape[1], eb = SOURCE_BYTES[w.dtype], rowBytes = k * eb;
  const res: RangeResult = { amax: 0, errSq: 0, refSq: 0, bytesRead: 0, reads: 0, maxReadBytes: 0, bytesWritten: 0 };
  const fd = openSource(w);
  try {
    const read = (buf: Uint8Array, len: number, pos: number): void => {
      let done = 0;
      while (done < len) {
        const n = readSync(fd, buf, done, len - done, pos + done);
        if (n === 0) break;
        done += n;
      }
      if (done < len) fail(w.path, `${w.length} bytes at offset ${w.offset} for weight '${w.name}'`, `the file ends ${done} bytes into a read of ${len} at ${pos}`);
      res.reads++;
      res.bytesRead += len;
      if (len > res.maxReadBytes) res.maxReadBytes = len;
    };
    const write = (data: Uint8Array, len: number, pos: number): void => {
      let done = 0;
      while (done < len) done += writeSync(job.outFd, data, done, len - done, pos + done);
      res.bytesWritten += len;
    };
    const srcAt = (row: number, col: number): number => w.offset + row * rowBytes + col * eb;

    if (w.transposed) {
      transposedRange(job, res, read, write);
      return res;
    }
    if (rowBytes <= job.chunkBytes) {
      const rowsPer = Math.max(1, Math.min(r1 - r0, Math.floor(job.chunkBytes / rowBytes)));
      const buf = new Uint8Array(rowsPer * rowBytes);
      if (job.kind === 'amax') {
        for (let r = r0; r < r1; r += rowsPer) {
          const n = Math.min(rowsPer, r1 - r);
          read(buf, n * rowBytes, srcAt(r, 0));
          const m = amaxSource(w.dtype, buf, 0, n * k);
          if (m > res.amax) res.amax = m;
        }
        return res;
      }
      // Rows are decoded one at a time into a row buffer that stays in cache for the kernel.
      const x = new Float32Array(k);
      const sums = newErrorSums();
      if (format === 'fp8') {
        const codes = new Uint8Array(rowsPer * k), scales = new Float32Array(rowsPer);
        const scaleBytes = new Uint8Array(scales.buffer);
        for (let r = r0; r < r1; r += rowsPer) {
          const n = Math.min(rowsPer, r1 - r);
          read(buf, n * rowBytes, srcAt(r, 0));
          for (let i = 0; i < n; i++) {
            const amax = decodeSourceAmax(w.dtype, buf, i * rowBytes, k, x);
            if (amax > res.amax) res.amax = amax;
            const s = fp8Scale(amax);
            scales[i] = s;
            fp8EncodeSpan(x, 0, k, s, codes, i * k, sums);
          }
          write(codes, n * k, job.layout.codes.offset + r * k);
          write(scaleBytes, n * 4, job.layout.scales.offset + r * 4);
        }
      } else {
        const packed = new Uint8Array((rowsPer * k) / 2), sc = new Uint8Array((rowsPer * k) / NVFP4_BLOCK);
        for (let r = r0; r < r1; r += rowsPer) {
          const n = Math.min(rowsPer, r1 - r);
          read(buf, n * rowBytes, srcAt(r, 0));
          for (let i = 0; i < n; i++) {
            decodeSource(w.dtype, buf, i * rowBytes, k, x);
            nvfp4EncodeSpan(x, 0, k, job.globalScale, packed, (i * k) / 2, sc, (i * k) / NVFP4_BLOCK, sums);
          }
          write(packed, (n * k) / 2, job.layout.codes.offset + (r * k) / 2);
          write(sc, (n * k) / NVFP4_BLOCK, job.layout.scales.offset + (r * k) / NVFP4_BLOCK);
        }
        if (sums.amax > res.amax) res.amax = sums.amax;
      }
      res.errSq = sums.errSq;
      res.refSq = sums.refSq;
      return res;
    }

    // A row longer than a chunk: segments of `seg` elements (a multiple of 16).
    const seg = Math.max(NVFP4_BLOCK, Math.floor(job.chunkBytes / eb / NVFP4_BLOCK) * NVFP4_BLOCK);
    const buf = new Uint8Array(seg * eb), x = new Float32Array(seg);
    const sums = newErrorSums();
    const codes = new Uint8Array(format === 'fp8' ? seg : seg / 2), sc = new Uint8Array(seg / NVFP4_BLOCK);
    const scaleCell = new Float32Array(1);
    for (let r = r0; r < r1; r++) {
      let rowAmax = 0;
      if (job.kind === 'amax' || format === 'fp8') {
        for (let c = 0; c < k; c += seg) {
          const n = Math.min(seg, k - c);
          read(buf, n * eb, srcAt(r, c));
          const m = amaxSource(w.dtype, buf, 0, n);
          if (m > rowAmax) rowAmax = m;
        }
        if (rowAmax > res.amax) res.amax = rowAmax;
        if (job.kind === 'amax') continue;
      }
      const s = fp8Scale(rowAmax);
      for (let c = 0; c < k; c += seg) {
        const n = Math.min(seg, k - c);
        read(buf, n * eb, srcAt(r, c));
        decodeSource(w.dtype, buf, 0, n, x);
        if (format === 'fp8') {
          fp8EncodeSpan(x, 0, n, s, codes, 0, sums);
          write(codes, n, job.layout.codes.offset + r * k + c);
        } else {
          nvfp4EncodeSpan(x, 0, n, job.globalScale, codes, 0, sc, 0, sums);
          write(codes, n / 2, job.layout.codes.offset + (r * k + c) / 2);
          write(sc, n / NVFP4_BLOCK, job.layout.scales.offset + (r * k + c) / NVFP4_BLOCK);
        }
      }
      if (format === 'fp8') {
        scaleCell[0] = s;
        write(new Uint8Array(scaleCell.buffer), 4, job.layout.scales.offset + r * 4);
      }
    }
    if (sums.amax > res.amax) res.amax = sums.amax;
    res.errSq = sums.errSq;
    res.refSq = sums.refSq;
    return res;
  } finally {
    closeSync(fd);
  }
}

/** Output rows (stored columns) a transposed weight's block holds: as many as fit TRANSPOSED_BLOCK_BYTES of its source. */
const TRANSPOSED_BLOCK_BYTES = 32 << 20;

/**
 * A weight stored [K, N] (its output channels are the stored columns): blocks of output rows, each
 * read as K segments of the stored rows (one positioned read each), decoded, then quantized one
 * output row at a time (gathered down the block's column), exactly as the rows of a stored [N, K] weight.
 */
function transposedRange(
  job: RangeJob, res: RangeResult,
  read: (buf: Uint8Array, len: number, pos: number) => void, write: (data: Uint8Array, len: number, pos: number) => void,
): void {
  const { weight: w, r0, r1, format, layout } = job;
  const [n, k] = w.shape, eb = SOURCE_BYTES[w.dtype];
  const per = Math.max(1, Math.min(r1 - r0, Math.floor(TRANSPOSED_BLOCK_BYTES / (k * eb))));
  const buf = new Uint8Array(per * k * eb), block = new Float32Array(per * k), rows = new Float32Array(per * k);
  const sums = newErrorSums();
  const codes = new Uint8Array(format === 'fp8' ? per * k : (per * k) / 2), scales = new Float32Array(per);
  const blockScales = new Uint8Array((per * k) / NVFP4_BLOCK);
  for (let b0 = r0; b0 < r1; b0 += per) {
    const m = Math.min(per, r1 - b0), segment = m * eb;
    // Stored row kk holds output rows' element kk: columns b0 .. b0 + m of it, packed as block row kk.
    for (let kk = 0; kk < k; kk++) read(buf.subarray(kk * segment), segment, w.offset + (kk * n + b0) * eb);
    if (job.kind === 'amax') {
      const a = amaxSource(w.dtype, buf, 0, m * k);
      if (a > res.amax) res.amax = a;
      continue;
    }
    decodeSource(w.dtype, buf, 0, m * k, block);
    // block is [k, m]; rows [m, k], transposed in 32 x 32 tiles (cache-sized).
    for (let k0 = 0; k0 < k; k0 += 32) {
      for (let i0 = 0; i0 < m; i0 += 32) {
        const k1 = Math.min(k, k0 + 32), i1 = Math.min(m, i0 + 32);
        for (let kk = k0; kk < k1; kk++) for (let i = i0; i < i1; i++) rows[i * k + kk] = block[kk * m + i];
      }
    }
    for (let i = 0; i < m; i++) {
      const x = rows.subarray(i * k, (i + 1) * k);
      let amax = 0;
      for (let kk = 0; kk < k; kk++) if (Math.abs(x[kk]) > amax) amax = Math.abs(x[kk]);
      if (amax > res.amax) res.amax = amax;
      if (format === 'fp8') {
        scales[i] = fp8Scale(amax);
        fp8EncodeSpan(x, 0, k, scales[i], codes, i * k, sums);
      } else {
        nvfp4EncodeSpan(x, 0, k, job.globalScale, codes, (i * k) / 2, blockScales, (i * k) / NVFP4_BLOCK, sums);
      }
    }
    if (format === 'fp8') {
      write(codes, m * k, layout.codes.offset + b0 * k);
      write(new Uint8Array(scales.buffer), m * 4, layout.scales.offset + b0 * 4);
    } else {
      write(codes, (m * k) / 2, layout.codes.offset + (b0 * k) / 2);
      write(blockScales, (m * k) / NVFP4_BLOCK, layout.scales.offset + (b0 * k) / NVFP4_BLOCK);
    }
  }
  res.errSq += sums.errSq;
  res.refSq += sums.refSq;
}

// ---- worker pool ------------------------------------------------------------------------------

interface Pending { job: RangeJob; resolve: (r: RangeResult) => void; reject: (e: Error) => void }

/** A message from a worker: the result, or the error (a CompileError's site kept). */
export type WorkerReply = { ok: true; result: RangeResult } | { ok: false; message: string; site?: ErrorSite };

class Pool {
  private readonly idle: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly all: Worker[] = [];

  constructor(readonly size: number) {
    const entry = workerEntry()!;
    // Workers do not inherit the TypeScript loader: from the sources, register tsx, then load the worker module.
    const tsxApi = () => pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    const boot = entry.pathname.endsWith('.ts') ? `import { register } from ${JSON.stringify(tsxApi())}; register(); await import(${JSON.stringify(entry.href)});` : undefined;
    for (let i = 0; i < size; i++) {
      const worker = boot ? new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`)) : new Worker(entry);
      worker.unref();
      this.all.push(worker);
      this.idle.push(worker);
    }
  }

  run(job: RangeJob): Promise<RangeResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop()!, task = this.queue.shift()!;
      worker.ref();
      const done = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.unref();
      };
      const onMessage = (m: WorkerReply): void => {
        done();
        this.idle.push(worker);
        if (m.ok) task.resolve(m.result);
        else task.reject(m.site ? new CompileError(m.site) : new Error(m.message));
        this.pump();
      };
      const onError = (e: Error): void => {
        done();
        const i = this.all.indexOf(worker);
        if (i >= 0) this.all.splice(i, 1);
        task.reject(e);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage(task.job);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

let pool: Pool | undefined;

/**
 * The worker's module: weights-worker.ts beside this file, or in the bundled compiler
 * (runtime/gpu/pack.ts) weights-worker.mjs beside the bundle; with neither, weights are quantized on
 * this thread.
 */
function workerEntry(): URL | undefined {
  return ['./weights-worker.ts', './weights-worker.mjs'].map((f) => new URL(f, import.meta.url)).find((u) => u.protocol === 'file:' && existsSync(fileURLToPath(u)));
}
const workersAvailable = (): boolean => workerEntry() !== undefined;

function getPool(size: number): Pool {
  if (!pool || pool.size < size) {
    void pool?.close();
    pool = new Pool(size);
  }
  return pool;
}

/** Terminates the worker threads (they otherwise idle, unreferenced, until the process exits). */
export async function closeQuantWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}

// ---- entry points -----------------------------------------------------------------------------

function combine(results: RangeResult[]): RangeResult {
  const t: RangeResult = { amax: 0, errSq: 0, refSq: 0, bytesRead: 0, reads: 0, maxReadBytes: 0, bytesWritten: 0 };
  for (const r of results) {
    t.amax = Math.max(t.amax, r.amax);
    t.errSq += r.errSq;
    t.refSq += r.refSq;
    t.bytesRead += r.bytesRead;
    t.reads += r.reads;
    t.maxReadBytes = Math.max(t.maxReadBytes, r.maxReadBytes);
    t.bytesWritten += r.bytesWritten;
  }
  return t;
}

function splitRows(rows: number, parts: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.floor((rows * i) / parts), b = Math.floor((rows * (i + 1)) / parts);
    if (b > a) out.push([a, b]);
  }
  return out;
}

function writeGlobalScale(fd: number, layout: QuantizedLayout, g: number): number {
  const cell = new Float32Array([g]);
  writeSync(fd, new Uint8Array(cell.buffer), 0, 4, layout.globalScale!.offset);
  return 4;
}

function finish(w: ExternalWeight | StackedWeight, format: WeightFormat, layout: QuantizedLayout, g: number, t: RangeResult, workers: number, t0: number): WeightQuantStats {
  externalReads.count += t.reads;
  externalReads.bytes += t.bytesRead;
  return {
    name: w.name, format, rows: layout.rows, cols: layout.cols, amax: t.amax,
    ...(format === 'nvfp4' ? { globalScale: g } : {}),
    relL2: relativeL2FromSums(t as ErrorSums), layout,
    bytesRead: t.bytesRead, reads: t.reads, maxReadBytes: t.maxReadBytes, bytesWritten: t.bytesWritten,
    workers, seconds: (performance.now() - t0) / 1000,
  };
}

const partsOf = (w: ExternalWeight | StackedWeight): readonly ExternalWeight[] => ('parts' in w ? w.parts : [w]);

function prepare(w: ExternalWeight | StackedWeight, format: WeightFormat, offset: number, opts: QuantizeWeightOptions): { layout: QuantizedLayout; chunkBytes: number } {
  const parts = partsOf(w);
  if (!parts.length) fail(`weight '${w.name}'`, 'at least one row block', 'none');
  for (const part of parts) {
    validate(part, format);
    if (part.shape[1] !== parts[0].shape[1]) fail(`weight '${w.name}'`, `row blocks with the same K (${parts[0].shape[1]}, from '${parts[0].name}')`, `'${part.name}' [${part.shape}]`);
  }
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(chunkBytes >= 1)) throw new Error(`chunkBytes must be positive, got ${chunkBytes}`);
  for (const part of parts) closeSync(openSource(part)); // missing or short file: a clear error before anything is written
  const rows = parts.reduce((a, p) => a + p.shape[0], 0);
  return { layout: quantizedLayout(format, rows, parts[0].shape[1], offset, opts.align ?? DEFAULT_ALIGN), chunkBytes };
}

/** Each part with the stacked layout moved to its first row, so that a job on the part writes its rows where they sit. */
function placed(w: ExternalWeight | StackedWeight, layout: QuantizedLayout): Array<{ weight: ExternalWeight; layout: QuantizedLayout }> {
  const k = layout.cols;
  const [codesPerRow, scalesPerRow] = layout.format === 'fp8' ? [k, 4] : [k / 2, k / NVFP4_BLOCK];
  let row = 0;
  return partsOf(w).map((weight) => {
    const [r, n] = [row, weight.shape[0]];
    row += n;
    const codes = { offset: layout.codes.offset + r * codesPerRow, length: n * codesPerRow };
    const scales = { offset: layout.scales.offset + r * scalesPerRow, length: n * scalesPerRow };
    return { weight, layout: { ...layout, rows: n, codes, scales, end: scales.offset + scales.length } };
  });
}

/** Quantizes one weight (or a stack of row blocks) on this thread, writing its sections to `fd` from `offset` on. */
export function quantizeWeightSync(w: ExternalWeight | StackedWeight, format: WeightFormat, fd: number, offset: number, opts: QuantizeWeightOptions = {}): WeightQuantStats {
  const t0 = performance.now();
  const { layout, chunkBytes } = prepare(w, format, offset, opts);
  const jobs = placed(w, layout).map((p) => ({ ...p, format, r0: 0, r1: p.weight.shape[0], chunkBytes, outFd: fd, globalScale: 1 }));
  const parts: RangeResult[] = [];
  let g = 1;
  if (format === 'nvfp4') {
    const a = combine(jobs.map((j) => runRangeJob({ ...j, kind: 'amax' })));
    parts.push({ ...a, amax: 0 });
    g = nvfp4GlobalScale(a.amax);
  }
  parts.push(...jobs.map((j) => runRangeJob({ ...j, kind: 'quantize', globalScale: g })));
  const t = combine(parts);
  if (format === 'nvfp4') t.bytesWritten += writeGlobalScale(fd, layout, g);
  return finish(w, format, layout, g, t, 0, t0);
}

/**
 * Quantizes one weight (or a stack of row blocks), on worker threads when that pays (opts.workers;
 * by default up to 8 of the machine's cores for weights of 4 M parameters or more, where the worker module is there: workerEntry()), else on this thread.
 */
export async function quantizeWeight(w: ExternalWeight | StackedWeight, format: WeightFormat, fd: number, offset: number, opts: QuantizeWeightOptions = {}): Promise<WeightQuantStats> {
  const rows = partsOf(w).reduce((a, p) => a + p.shape[0], 0);
  const params = rows * (partsOf(w)[0]?.shape[1] ?? 0);
  const workers = Math.min(opts.workers ?? (params >= WORKER_MIN_PARAMS && workersAvailable() ? Math.min(availableParallelism(), 8) : 0), rows);
  if (workers <= 0) return quantizeWeightSync(w, format, fd, offset, opts);
  const t0 = performance.now();
  const { layout, chunkBytes } = prepare(w, format, offset, opts);
  const p = getPool(workers);
  const jobs = placed(w, layout).flatMap((b) => splitRows(b.weight.shape[0], workers).map(([r0, r1]) => ({ ...b, format, r0, r1, chunkBytes, outFd: fd, globalScale: 1 })));
  const parts: RangeResult[] = [];
  let g = 1;
  if (format === 'nvfp4') {
    const a = combine(await Promise.all(jobs.map((j) => p.run({ ...j, kind: 'amax' }))));
    parts.push({ ...a, amax: 0 });
    g = nvfp4GlobalScale(a.amax);
  }
  parts.push(...(await Promise.all(jobs.map((j) => p.run({ ...j, kind: 'quantize', globalScale: g })))));
  const t = combine(parts);
  if (format === 'nvfp4') t.bytesWritten += writeGlobalScale(fd, layout, g);
  return finish(w, format, layout, g, t, workers, t0);
}

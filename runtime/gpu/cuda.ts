/**
 * The CUDA driver API from TypeScript: koffi bindings to libcuda.so.1 (no native build).
 *
 * Only what the runtime uses: one device's primary context, plain device allocations
 * (cuMemAlloc), copies, module loading from memory, kernel launches, streams, stream capture into
 * CUDA graphs, events. Device pointers are plain numbers (CUdeviceptr, below 2^53); handles
 * (contexts, modules, functions, streams, graphs, events) are koffi pointers (bigint).
 *
 * Every call is checked: a failure throws one line naming the function and CUDA's error name and
 * string. A machine without the driver gets "no CUDA driver (libcuda.so.1)" from loadDriver().
 */
import koffi from 'koffi';
import { fail } from '../../compiler/errors.ts';

export type Handle = bigint;
export type DevicePtr = number;

const CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
const CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
const CU_STREAM_NON_BLOCKING = 1;
const CU_STREAM_CAPTURE_MODE_GLOBAL = 0;

const PROTOTYPES = {
  cuInit: 'int cuInit(unsigned int flags)',
  cuDriverGetVersion: 'int cuDriverGetVersion(_Out_ int *version)',
  cuDeviceGet: 'int cuDeviceGet(_Out_ int *device, int ordinal)',
  cuDeviceGetAttribute: 'int cuDeviceGetAttribute(_Out_ int *value, int attrib, int device)',
  cuDeviceGetName: 'int cuDeviceGetName(uint8_t *name, int len, int device)',
  cuDeviceGetPCIBusId: 'int cuDeviceGetPCIBusId(uint8_t *busId, int len, int device)',
  cuDevicePrimaryCtxRetain: 'int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int device)',
  cuDevicePrimaryCtxRelease: 'int cuDevicePrimaryCtxRelease_v2(int device)',
  cuCtxSetCurrent: 'int cuCtxSetCurrent(void *ctx)',
  cuCtxSynchronize: 'int cuCtxSynchronize()',
  cuMemGetInfo: 'int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)',
  cuMemAlloc: 'int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)',
  cuMemFree: 'int cuMemFree_v2(uint64_t dptr)',
  cuMemcpyHtoD: 'int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)',
  cuMemcpyDtoH: 'int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes)',
  cuMemcpyHtoDAsync: 'int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)',
  cuMemHostRegister: 'int cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags)',
  cuMemHostUnregister: 'int cuMemHostUnregister(void *p)',
  cuMemcpyDtoDAsync: 'int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)',
  cuMemsetD8: 'int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t count)',
  cuMemsetD8Async: 'int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t count, void *stream)',
  cuModuleLoadData: 'int cuModuleLoadData(_Out_ void **module, const void *image)',
  cuModuleUnload: 'int cuModuleUnload(void *module)',
  cuModuleGetFunction: 'int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)',
  cuFuncSetAttribute: 'int cuFuncSetAttribute(void *fn, int attrib, int value)',
  cuLaunchKernel: 'int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int sharedBytes, void *stream, void *params, void *extra)',
  cuStreamCreate: 'int cuStreamCreate(_Out_ void **stream, unsigned int flags)',
  cuStreamDestroy: 'int cuStreamDestroy_v2(void *stream)',
  cuStreamSynchronize: 'int cuStreamSynchronize(void *stream)',
  cuStreamQuery: 'int cuStreamQuery(void *stream)',
  cuStreamBeginCapture: 'int cuStreamBeginCapture_v2(void *stream, int mode)',
  cuStreamEndCapture: 'int cuStreamEndCapture(void *stream, _Out_ void **graph)',
  cuGraphInstantiate: 'int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, unsigned long long flags)',
  cuGraphLaunch: 'int cuGraphLaunch(void *exec, void *stream)',
  cuGraphExecDestroy: 'int cuGraphExecDestroy(void *exec)',
  cuGraphDestroy: 'int cuGraphDestroy(void *graph)',
  cuEventCreate: 'int cuEventCreate(_Out_ void **event, unsigned int flags)',
  cuEventDestroy: 'int cuEventDestroy_v2(void *event)',
  cuEventRecord: 'int cuEventRecord(void *event, void *stream)',
  cuEventSynchronize: 'int cuEventSynchronize(void *event)',
  cuEventQuery: 'int cuEventQuery(void *event)',
  cuTensorMapEncodeTiled: 'int cuTensorMapEncodeTiled(void *map, int dtype, uint32_t rank, uint64_t address, const uint64_t *dims, const uint64_t *strides, const uint32_t *box, const uint32_t *elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill)',
  cuStreamWaitEvent: 'int cuStreamWaitEvent(void *stream, void *event, unsigned int flags)',
  cuGetErrorName: 'int cuGetErrorName(int error, _Out_ const char **name)',
  cuGetErrorString: 'int cuGetErrorString(int error, _Out_ const char **text)',
} as const;

type Fn = (...args: unknown[]) => unknown;

/** Loads a shared library by the first name that opens; null when none does. */
export function loadLibrary(names: readonly string[]): { lib: ReturnType<typeof koffi.load>; name: string } | { error: string } {
  let error = '';
  for (const name of names) {
    try {
      return { lib: koffi.load(name), name };
    } catch (e) {
      error ||= (e as Error).message;
    }
  }
  return { error };
}

export class Driver {
  private readonly fn: Record<keyof typeof PROTOTYPES, Fn>;
  private readonly elapsed: Fn;

  constructor(lib: ReturnType<typeof koffi.load>) {
    this.fn = Object.fromEntries(Object.entries(PROTOTYPES).map(([k, p]) => [k, lib.func(p) as Fn])) as Record<keyof typeof PROTOTYPES, Fn>;
    // CUDA 12.8+ exports cuEventElapsedTime_v2; older drivers only the first version.
    let elapsed: Fn;
    try {
      elapsed = lib.func('int cuEventElapsedTime_v2(_Out_ float *ms, void *start, void *end)') as Fn;
    } catch {
      elapsed = lib.func('int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)') as Fn;
    }
    this.elapsed = elapsed;
  }

  /** The error's name and text, e.g. "CUDA_ERROR_INVALID_VALUE (invalid argument)". */
  describe(rc: number): string {
    const name: (string | null)[] = [null], text: (string | null)[] = [null];
    this.fn.cuGetErrorName(rc, name);
    this.fn.cuGetErrorString(rc, text);
    return `${name[0] ?? `CUDA error ${rc}`} (${text[0] ?? 'no description'})`;
  }

  /** Calls a driver function and returns its CUresult. */
  rc(name: keyof typeof PROTOTYPES, ...args: unknown[]): number {
    return this.fn[name](...args) as number;
  }

  /** Calls a driver function and throws (function name, CUDA error) unless it returns CUDA_SUCCESS. */
  call(name: keyof typeof PROTOTYPES, ...args: unknown[]): void {
    const rc = this.fn[name](...args) as number;
    if (rc !== 0) fail(PROTOTYPES[name].split('(')[0].split(' ')[1], 'CUDA_SUCCESS', this.describe(rc));
  }

  /** A call whose first argument is a one-element output array; returns that value. */
  out<T>(name: keyof typeof PROTOTYPES, ...args: unknown[]): T {
    const box: unknown[] = [null];
    this.call(name, box, ...args);
    return box[0] as T;
  }

  elapsedMs(start: Handle, end: Handle): number {
    const ms = [0];
    const rc = this.elapsed(ms, start, end) as number;
    if (rc !== 0) fail('cuEventElapsedTime', 'CUDA_SUCCESS', this.describe(rc));
    return ms[0];
  }
}

export interface Device {
  driver: Driver;
  ordinal: number;
  name: string;
  capability: [number, number];
  multiprocessors: number;
  driverVersion: number;
  context: Handle;
  /** PCI bus id (domain:bus:device.function), which names the same board to NVML (runtime/gpu/nvml.ts). */
  pciBusId: string;
}

let cached: Driver | null = null;

/** The driver, loaded once; "no CUDA driver (libcuda.so.1)" when the library is missing. */
export function loadDriver(): Driver {
  if (cached) return cached;
  const loaded = loadLibrary(['libcuda.so.1']);
  if ('error' in loaded) fail('libcuda.so.1', 'the NVIDIA CUDA driver', `no CUDA driver (libcuda.so.1): ${loaded.error}`);
  cached = new Driver(loaded.lib);
  cached.call('cuInit', 0);
  return cached;
}

/** Opens device `ordinal`: retains its primary context and makes it current. */
export function openDevice(ordinal = 0): Device {
  const driver = loadDriver();
  const dev = driver.out<number>('cuDeviceGet', ordinal);
  const attr = (a: number) => driver.out<number>('cuDeviceGetAttribute', a, dev);
  const nameBuf = Buffer.alloc(256);
  driver.call('cuDeviceGetName', nameBuf, nameBuf.length, dev);
  const busBuf = Buffer.alloc(64);
  driver.call('cuDeviceGetPCIBusId', busBuf, busBuf.length, dev);
  const context = driver.out<Handle>('cuDevicePrimaryCtxRetain', dev);
  driver.call('cuCtxSetCurrent', context);
  return {
    driver, ordinal: dev, context,
    name: nameBuf.subarray(0, nameBuf.indexOf(0)).toString(),
    capability: [attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)],
    multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
    driverVersion: driver.out<number>('cuDriverGetVersion'),
    pciBusId: busBuf.subarray(0, busBuf.indexOf(0)).toString(),
  };
}

export function memInfo(d: Driver): { free: number; total: number } {
  const free = [0], total = [0];
  d.call('cuMemGetInfo', free, total);
  return { free: Number(free[0]), total: Number(total[0]) };
}

const CUDA_ERROR_OUT_OF_MEMORY = 2;
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/** Device memory; out of memory, the error says how much the GPU has free (other processes' share included). */
export function alloc(d: Driver, bytes: number, what: string): DevicePtr {
  const box = [0];
  const rc = d.rc('cuMemAlloc', box, Math.max(bytes, 1));
  if (rc === CUDA_ERROR_OUT_OF_MEMORY) {
    const m = memInfo(d);
    fail(`cuMemAlloc_v2 (${what}, ${gib(bytes)})`, 'CUDA_SUCCESS', `${d.describe(rc)}: ${gib(m.free)} of the GPU's ${gib(m.total)} free (nvidia-smi lists the processes holding the rest)`);
  }
  if (rc !== 0) fail(`cuMemAlloc_v2 (${what}, ${gib(bytes)})`, 'CUDA_SUCCESS', d.describe(rc));
  return Number(box[0]);
}

export const createStream = (d: Driver): Handle => d.out<Handle>('cuStreamCreate', CU_STREAM_NON_BLOCKING);
export const createEvent = (d: Driver): Handle => d.out<Handle>('cuEventCreate', 0);

export function loadModule(d: Driver, image: Uint8Array, unit: string): Handle {
  try {
    return d.out<Handle>('cuModuleLoadData', image);
  } catch (e) {
    fail(`kernels/${unit}.cubin`, 'a cubin this GPU loads', (e as Error).message);
  }
}

export function getFunction(d: Driver, module: Handle, name: string, sharedBytes: number): Handle {
  const fn = d.out<Handle>('cuModuleGetFunction', module, name);
  // Shared memory above the default 48 KB (static + dynamic) must be opted into per function; the
  // static part is the kernel's own, so any dynamic size is declared (a 48 KB ring plus 256 static
  // bytes failed to launch when only sizes above 48 KB were).
  if (sharedBytes > 0) d.call('cuFuncSetAttribute', fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes);
  return fn;
}

/** A zeroed Buffer of `bytes` whose address is a multiple of `align` (a power of two). */
export function alignedBuffer(bytes: number, align = 64): Buffer {
  const raw = Buffer.alloc(bytes + align);
  const shift = (align - Number(koffi.address(raw) % BigInt(align))) % align;
  return raw.subarray(shift, shift + bytes);
}

/** Zeroed memory that worker threads share, `bytes` of it from `offset`, whose address is a multiple of `align`. */
export function alignedShared(bytes: number, align = 4096): { data: SharedArrayBuffer; offset: number } {
  const data = new SharedArrayBuffer(bytes + align);
  return { data, offset: (align - Number(koffi.address(Buffer.from(data)) % BigInt(align))) % align };
}

/**
 * A kernel's parameters as cuLaunchKernel reads them: `values` holds each parameter's bytes, 8-byte
 * slots for scalars and pointers, 64-byte aligned 128-byte slots for tensor maps (`bytes`);
 * `pointers` the address of each slot. Both stay alive as long as the launch.
 */
export class KernelParams {
  readonly values: Buffer;
  readonly pointers: BigUint64Array;
  constructor(params: ({ ptr: DevicePtr } | { i64: number } | { i32: number } | { u32: number } | { f32: number } | { bytes: Uint8Array })[]) {
    const offsets: number[] = [];
    let end = 0;
    for (const p of params) {
      const size = 'bytes' in p ? p.bytes.length : 8;
      end = Math.ceil(end / (size > 8 ? 64 : 8)) * (size > 8 ? 64 : 8);
      offsets.push(end);
      end += size;
    }
    this.values = alignedBuffer(Math.max(end, 8));
    params.forEach((p, i) => {
      const at = offsets[i];
      if ('bytes' in p) this.values.set(p.bytes, at);
      else if ('ptr' in p) this.values.writeBigUInt64LE(BigInt(p.ptr), at);
      else if ('i64' in p) this.values.writeBigInt64LE(BigInt(p.i64), at);
      else if ('i32' in p) this.values.writeInt32LE(p.i32, at);
      else if ('u32' in p) this.values.writeUInt32LE(p.u32, at);
      else this.values.writeFloatLE(p.f32, at);
    });
    const base = koffi.address(this.values);
    this.pointers = BigUint64Array.from(offsets.map((o) => base + BigInt(o)));
  }
}

const TENSOR_MAP_DTYPE = { uint8: 0, float32: 7, bfloat16: 9 } as const; // CU_TENSOR_MAP_DATA_TYPE_UINT8, _FLOAT32, _BFLOAT16
const TENSOR_MAP_BYTES = { uint8: 1, float32: 4, bfloat16: 2 } as const;
/** CU_TENSOR_MAP_SWIZZLE_32B / _64B / _128B by the span they swizzle. */
const SWIZZLE: Record<number, number> = { 32: 1, 64: 2, 128: 3 };
const CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3;

/**
 * A tensor map (CUtensorMap's 128 bytes) over a row-major matrix at `address`: `rows` x `cols`
 * elements, rows `rowBytes` apart, boxes of `box` = [cols, rows] whose rows (32, 64 or 128 bytes) are
 * the swizzle's span (the layout the kernels address shared memory in), zeros past the edges.
 */
export function encodeTensorMap(d: Driver, address: DevicePtr, m: { dtype: keyof typeof TENSOR_MAP_DTYPE; rows: number; cols: number; rowBytes: number; box: readonly [number, number] }): Uint8Array {
  const swizzle = SWIZZLE[m.box[0] * TENSOR_MAP_BYTES[m.dtype]];
  if (swizzle === undefined) throw new Error(`tensor map: a box of ${m.box[0]} ${m.dtype} (${m.box[0] * TENSOR_MAP_BYTES[m.dtype]} bytes a row); the kernels take rows of 32, 64 or 128 bytes (their swizzle span)`);
  const map = alignedBuffer(128); // the driver writes a 64-byte aligned object
  d.call('cuTensorMapEncodeTiled', map, TENSOR_MAP_DTYPE[m.dtype], 2, BigInt(address), BigUint64Array.of(BigInt(m.cols), BigInt(m.rows)), BigUint64Array.of(BigInt(m.rowBytes)),
    Uint32Array.of(m.box[0], m.box[1]), Uint32Array.of(1, 1), 0, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, 0);
  return Uint8Array.from(map);
}

export const dims = (g: number | readonly number[]): [number, number, number] =>
  typeof g === 'number' ? [g, 1, 1] : [g[0] ?? 1, g[1] ?? 1, g[2] ?? 1];

/** cuEventQuery's and cuStreamQuery's answer for work not yet done. */
const CUDA_ERROR_NOT_READY = 600;

/**
 * Resolves when the work recorded before `handle` (an event, or all of a stream's) is done, without
 * blocking Node's event loop: it is queried, and between queries the loop runs what is waiting
 * (setImmediate), so a server keeps answering health checks, reading requests and writing responses
 * while the GPU works (a cuEventSynchronize here held the loop for a whole 2 s denoising loop). As
 * busy as the driver's own spin-wait, with no added latency.
 */
async function done(d: Driver, query: 'cuEventQuery' | 'cuStreamQuery', handle: Handle): Promise<void> {
  for (;;) {
    const rc = d.rc(query, handle);
    if (rc === 0) return;
    if (rc !== CUDA_ERROR_NOT_READY) fail(query, 'CUDA_SUCCESS or CUDA_ERROR_NOT_READY', d.describe(rc));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

export const eventDone = (d: Driver, event: Handle): Promise<void> => done(d, 'cuEventQuery', event);
export const streamDone = (d: Driver, stream: Handle): Promise<void> => done(d, 'cuStreamQuery', stream);

export function launch(d: Driver, fn: Handle, grid: number | readonly number[], block: number | readonly number[], sharedBytes: number, stream: Handle, params: KernelParams): void {
  const [gx, gy, gz] = dims(grid), [bx, by, bz] = dims(block);
  d.call('cuLaunchKernel', fn, gx, gy, gz, bx, by, bz, sharedBytes, stream, params.pointers, null);
}

/** Captures what `record` enqueues on `stream` into a CUDA graph and instantiates it. */
export function captureGraph(d: Driver, stream: Handle, record: () => void): { exec: Handle; graph: Handle } {
  d.call('cuStreamBeginCapture', stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
  try {
    record();
  } catch (e) {
    d.rc('cuStreamEndCapture', stream, [null]); // ends the (now invalid) capture; its error is the one thrown
    throw e;
  }
  const box: (Handle | null)[] = [null];
  d.call('cuStreamEndCapture', stream, box);
  const graph = box[0]!;
  const exec = d.out<Handle>('cuGraphInstantiate', graph, 0);
  return { exec, graph };
}

/**
 * Tensor: a dense value the reference executor computes with.
 *
 * Storage is chosen for exact, plain arithmetic: every float type (float16, bfloat16, float8,
 * float4) is held decoded in a Float32Array (its logical dtype is kept, and values were rounded
 * to it when produced); int64/uint64 in a BigInt64Array; bool in a Uint8Array of 0/1.
 */
import {
  type DType, bf16ToF32, f16ToF32, f8ToF32, f4e2m1ToF32, bytesFor,
} from './dtype.ts';

export type TensorData =
  | Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array
  | Uint8Array | Uint16Array | Uint32Array | string[];

export class Tensor {
  readonly size: number;
  constructor(readonly dtype: DType, readonly shape: readonly number[], readonly data: TensorData) {
    this.size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== this.size) {
      throw new Error(`tensor data has ${data.length} elements, shape [${shape}] needs ${this.size}`);
    }
  }

  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(dtype, shape, allocate(dtype, shape.reduce((a, b) => a * b, 1)));
  }

  static scalar(dtype: DType, value: number | bigint): Tensor {
    const t = Tensor.zeros(dtype, []);
    t.set(0, value);
    return t;
  }

  static fromNumbers(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
    const t = Tensor.zeros(dtype, shape);
    for (let i = 0; i < values.length; i++) t.set(i, values[i]);
    return t;
  }

  /** Element i as a JS number (int64 converted, exact below 2^53). */
  get(i: number): number {
    const v = this.data[i];
    return typeof v === 'bigint' ? Number(v) : (v as number);
  }

  /** Writes element i, converting to the storage (saturating int64, truncating ints). */
  set(i: number, v: number | bigint): void {
    const d = this.data;
    if (d instanceof BigInt64Array) d[i] = toInt64(v);
    else if (this.dtype === 'bool') (d as Uint8Array)[i] = v ? 1 : 0;
    else (d as Float32Array)[i] = typeof v === 'bigint' ? Number(v) : v;
  }

  /** All elements as JS numbers. */
  toNumbers(): number[] {
    const out = new Array<number>(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.get(i);
    return out;
  }

  /** Float32 view of the values (converted for non-float storage). */
  toFloat32(): Float32Array {
    if (this.data instanceof Float32Array) return this.data;
    return Float32Array.from(this.toNumbers());
  }

  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.dtype, shape, this.data);
  }
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

export function toInt64(v: number | bigint): bigint {
  if (typeof v === 'bigint') return v;
  if (Number.isNaN(v)) return 0n;
  if (v >= 9223372036854775807) return INT64_MAX;
  if (v <= -9223372036854775808) return INT64_MIN;
  return BigInt(Math.trunc(v));
}

export function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float64': return new Float64Array(n);
    case 'int64': case 'uint64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int16': return new Int16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'string': return new Array<string>(n).fill('');
    default: return new Float32Array(n);
  }
}

/** Decodes little-endian stored bytes (ONNX raw_data / external data) into a Tensor. */
export function tensorFromBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const need = bytesFor(dtype, n);
  if (bytes.byteLength < need) {
    throw new Error(`${dtype}[${shape}] needs ${need} bytes, found ${bytes.byteLength}`);
  }
  const copy = new Uint8Array(bytes.subarray(0, need)); // aligned copy
  const buf = copy.buffer;
  switch (dtype) {
    case 'float32': return new Tensor(dtype, shape, new Float32Array(buf, 0, n));
    case 'float64': return new Tensor(dtype, shape, new Float64Array(buf, 0, n));
    case 'int64': case 'uint64': return new Tensor(dtype, shape, new BigInt64Array(buf, 0, n));
    case 'int32': return new Tensor(dtype, shape, new Int32Array(buf, 0, n));
    case 'int16': return new Tensor(dtype, shape, new Int16Array(buf, 0, n));
    case 'int8': return new Tensor(dtype, shape, new Int8Array(buf, 0, n));
    case 'uint8': return new Tensor(dtype, shape, copy);
    case 'bool': return new Tensor(dtype, shape, copy.map((b) => (b ? 1 : 0)));
    case 'uint16': return new Tensor(dtype, shape, new Uint16Array(buf, 0, n));
    case 'uint32': return new Tensor(dtype, shape, new Uint32Array(buf, 0, n));
    case 'float16': case 'bfloat16': {
      const halves = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      const decode = dtype === 'float16' ? f16ToF32 : bf16ToF32;
      for (let i = 0; i < n; i++) out[i] = decode(halves[i]);
      return new Tensor(dtype, shape, out);
    }
    case 'float4e2m1': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f4e2m1ToF32(copy[i >> 1] >> ((i & 1) * 4));
      return new Tensor(dtype, shape, out);
    }
    case 'string': throw new Error('string tensors cannot be read from raw bytes');
    default: {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f8ToF32(copy[i], dtype);
      return new Tensor(dtype, shape, out);
    }
  }
}

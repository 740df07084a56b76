/**
 * Element types of the IR and their ONNX TensorProto.DataType codes.
 *
 * The onnx-proto schema predates the float8/float4 types, so codes arrive as plain numbers; this
 * table is the one place they are mapped. Also holds the scalar codecs the reference executor needs
 * to read stored bytes (float16, bfloat16, the float8 variants, float4 e2m1) and to round float32
 * to a narrower float type (Cast).
 */

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'float4e2m1'
  | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool' | 'string';

const ONNX_CODES: Record<number, DType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
  17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2', 20: 'float8e5m2fnuz', 23: 'float4e2m1',
};

/** Maps an ONNX TensorProto.DataType code to a DType; undefined for codes the IR does not model. */
export function dtypeFromOnnx(code: number): DType | undefined {
  return ONNX_CODES[code];
}

export function onnxCodeOf(dtype: DType): number {
  for (const [code, name] of Object.entries(ONNX_CODES)) if (name === dtype) return Number(code);
  throw new Error(`no ONNX code for ${dtype}`);
}

/** Storage bits per element (float4 packs two per byte). */
export function bitsOf(dtype: DType): number {
  switch (dtype) {
    case 'float64': case 'int64': case 'uint64': return 64;
    case 'float32': case 'int32': case 'uint32': return 32;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 16;
    case 'float4e2m1': return 4;
    case 'string': return 0;
    default: return 8;
  }
}

export function bytesFor(dtype: DType, elements: number): number {
  return Math.ceil((bitsOf(dtype) * elements) / 8);
}

export const isFloat = (d: DType): boolean => d.startsWith('float') || d === 'bfloat16';
export const isInteger = (d: DType): boolean => d.startsWith('int') || d.startsWith('uint');

// ---- scalar codecs -------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToF32(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

/** float32 -> bfloat16 bits, round to nearest even, NaN preserved. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Generic minifloat decoder. `bias` is the exponent bias, `finiteMax` whether the all-ones exponent
 * is an ordinary binade (e4m3fn, fnuz, e2m1); `nanCode`s are listed by the caller.
 */
function decodeMinifloat(bits: number, eBits: number, mBits: number, bias: number): number {
  const sign = (bits >> (eBits + mBits)) & 1 ? -1 : 1;
  const e = (bits >> mBits) & ((1 << eBits) - 1);
  const m = bits & ((1 << mBits) - 1);
  const mag = e === 0 ? (m / 2 ** mBits) * 2 ** (1 - bias) : (1 + m / 2 ** mBits) * 2 ** (e - bias);
  return sign * mag;
}

export function f8ToF32(bits: number, dtype: DType): number {
  switch (dtype) {
    case 'float8e4m3fn':
      return (bits & 0x7f) === 0x7f ? NaN : decodeMinifloat(bits, 4, 3, 7);
    case 'float8e4m3fnuz':
      return bits === 0x80 ? NaN : decodeMinifloat(bits & 0x7f, 4, 3, 8) * (bits & 0x80 ? -1 : 1);
    case 'float8e5m2': {
      const e = (bits >> 2) & 0x1f;
      if (e === 31) return bits & 3 ? NaN : bits & 0x80 ? -Infinity : Infinity;
      return decodeMinifloat(bits, 5, 2, 15);
    }
    case 'float8e5m2fnuz':
      return bits === 0x80 ? NaN : decodeMinifloat(bits & 0x7f, 5, 2, 16) * (bits & 0x80 ? -1 : 1);
    default:
      throw new Error(`not a float8 type: ${dtype}`);
  }
}

export function f4e2m1ToF32(nibble: number): number {
  return decodeMinifloat(nibble & 0xf, 2, 1, 1);
}

/** float32 -> float16 -> float32, round to nearest even (what a Cast to float16 does to a value). */
export function roundToF16(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  if (a < 2 ** -25) return x >= 0 || Object.is(x, 0) ? 0 * Math.sign(x) : -0;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const quantum = 2 ** (e - 10);
  return Math.sign(x) * roundHalfEven(a / quantum) * quantum;
}

export function roundToBf16(x: number): number {
  return bf16ToF32(f32ToBf16(x));
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Reads per-channel statistics given in a manifest as a number (broadcast), a list of numbers, or
 * a path to a .npy file (relative to the manifest), as a Float32Array of the expected length.
 */
import { dirname, resolve } from 'node:path';
import { readNpy } from '../../compiler/npy.ts';

export function channelStats(value: unknown, channels: number, key: string, manifestPath: string, fallback?: readonly number[]): Float32Array {
  const where = `${manifestPath}: '${key}'`;
  if (value === undefined && fallback) value = fallback;
  if (typeof value === 'number' && Number.isFinite(value)) return new Float32Array(channels).fill(value);
  if (Array.isArray(value) && value.length === channels && value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    return Float32Array.from(value as number[]);
  }
  if (typeof value === 'string') {
    const t = readNpy(resolve(dirname(manifestPath), value));
    if (t.size !== channels) throw new Error(`${where} (${value}) should hold ${channels} values, found ${t.size}`);
    return t.toFloat32();
  }
  throw new Error(`${where} should be a number, ${channels} numbers or a .npy path, found ${JSON.stringify(value)}`);
}

/**
 * runtime/gpu/tuning-cache.ts: the GEMM algorithms load-time tuning chose, per device/library scope —
 * written atomically, merged with what is there, read back per scope; a malformed file or entry
 * counts as empty, a file that cannot be written is a message (the load goes on); tuning is off unless asked.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTuning, tuningCachePath, writeTuning } from '../../runtime/gpu/tuning-cache.ts';

const algo = (byte: number) => Buffer.alloc(64, byte).toString('hex');

describe('GEMM tuning cache', () => {
  it('keeps each scope\'s choices, merges later writes, and reads back only well-formed entries', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuning-'));
    const file = join(dir, 'sub', 'gemm-tuning.json');
    expect(readTuning(file, 'H100 sm_90 cublasLt 130000').size).toBe(0); // absent: empty
    expect(writeTuning(file, 'H100 sm_90 cublasLt 130000', new Map([['fp8 4096 3072 3072', algo(1)]]))).toBeNull();
    expect(writeTuning(file, 'H100 sm_90 cublasLt 130000', new Map([['fp8 4096 12288 3072', algo(2)]]))).toBeNull();
    expect(writeTuning(file, 'B200 sm_100 cublasLt 130000', new Map([['fp8 4096 3072 3072', algo(3)]]))).toBeNull();
    expect([...readTuning(file, 'H100 sm_90 cublasLt 130000')]).toEqual([['fp8 4096 3072 3072', algo(1)], ['fp8 4096 12288 3072', algo(2)]]);
    expect([...readTuning(file, 'B200 sm_100 cublasLt 130000')]).toEqual([['fp8 4096 3072 3072', algo(3)]]);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['gemm-tuning.json']); // no partial file left
    // A later choice for the same shape replaces the earlier one.
    writeTuning(file, 'H100 sm_90 cublasLt 130000', new Map([['fp8 4096 3072 3072', algo(4)]]));
    expect(readTuning(file, 'H100 sm_90 cublasLt 130000').get('fp8 4096 3072 3072')).toBe(algo(4));
  });

  it('a malformed file or entry counts as empty; an unwritable place is a message, not a throw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuning-bad-'));
    const file = join(dir, 'gemm-tuning.json');
    writeFileSync(file, '{ not json');
    expect(readTuning(file, 's').size).toBe(0);
    writeFileSync(file, JSON.stringify({ format: 1, scopes: { s: { good: algo(5), short: 'abcd', upper: algo(0xab).toUpperCase(), num: 7 } } }));
    expect([...readTuning(file, 's').keys()]).toEqual(['good']);
    writeFileSync(file, JSON.stringify({ format: 2, scopes: { s: { good: algo(5) } } }));
    expect(readTuning(file, 's').size).toBe(0); // another format
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, 'a file where a folder should be');
    expect(writeTuning(join(blocked, 'gemm-tuning.json'), 's', new Map([['k', algo(1)]]))).toMatch(/ENOTDIR|EEXIST/);
    expect(writeTuning(join(dir, 'x.json'), 's', new Map())).toBeNull(); // nothing to write
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('tuning only where $DC_GEMM_TUNING asks: a path, or "on" for ~/.cache/dc; unset or "off" times nothing', () => {
    expect(tuningCachePath({ DC_GEMM_TUNING: '/tmp/t.json' })).toBe('/tmp/t.json');
    expect(tuningCachePath({ DC_GEMM_TUNING: 'on' })).toMatch(/\.cache\/dc\/gemm-tuning\.json$/);
    expect(tuningCachePath({ DC_GEMM_TUNING: 'off' })).toBeNull();
    expect(tuningCachePath({ DC_GEMM_TUNING: '' })).toBeNull();
    expect(tuningCachePath({})).toBeNull();
  });
});

/**
 * Step memoization on the device (the manifest's `memo`, compiler/memo.ts): the launches of a step
 * that depend only on its small inputs (timestep, guidance) are computed once per key and restored
 * after that.
 *
 * A replica gets two more launch lists over its arena and a stage buffer (the saved values, back to
 * back): `fill`, the full step with each saved buffer copied into the stage after its last
 * memoized writer; `hit`, the step without the memoized launches, each saved buffer copied back
 * from the stage where its first memoized writer ran. Every other launch reads what the full step
 * gives it, so a hit step's outputs are the full step's, bit for bit.
 *
 * MemoCache holds the stages by key (the key inputs' bytes and the replica: a replica's entries are
 * filled and read in its stream's order; the model, where models share one), least recently used
 * first out, within a byte budget.
 * reserve() runs before a request's steps are enqueued (nothing in flight then), so an evicted
 * entry is never one a copy still reads; a request whose keys do not fit runs without the memo.
 */
import type { MemoPlan } from '../../compiler/memo.ts';
import { fail } from '../../compiler/errors.ts';
import { type DevicePtr, type Driver, type Handle, alloc } from './cuda.ts';

export type Step = (s: Handle) => void;

/** The stage's size and each saved value's place in it. */
export function stageLayout(plan: MemoPlan): { bytes: number; at: number[] } {
  const at: number[] = [];
  let bytes = 0;
  for (const v of plan.values) { at.push(bytes); bytes += Math.ceil(v.bytes / 256) * 256; }
  return { bytes, at };
}

/** The filling and restoring launch lists of a replica (arena and stage addresses bound). */
export function memoSteps(d: Driver, plan: MemoPlan, steps: readonly Step[], arena: DevicePtr, stage: DevicePtr): { fill: Step[]; hit: Step[] } {
  const { at } = stageLayout(plan);
  const memoized = new Set(plan.launches);
  const copy = (dst: DevicePtr, src: DevicePtr, bytes: number): Step => (s) => d.call('cuMemcpyDtoDAsync', dst, src, bytes, s);
  const fill: Step[] = [], hit: Step[] = [];
  steps.forEach((step, i) => {
    fill.push(step);
    plan.values.forEach((v, k) => { if (v.last === i) fill.push(copy(stage + at[k], arena + v.offset, v.bytes)); });
    if (!memoized.has(i)) hit.push(step);
    else plan.values.forEach((v, k) => { if (v.first === i) hit.push(copy(arena + v.offset, stage + at[k], v.bytes)); });
  });
  return { fill, hit };
}

export class MemoCache {
  private readonly entries = new Map<string, { ptr: DevicePtr; bytes: number; filled: boolean }>();

  /** `budgetBytes` for every model whose stages it holds (the modules of one network share one: model.ts ArenaShare). */
  constructor(private readonly d: Driver, readonly budgetBytes: number) {}

  get size(): number { return this.entries.size; }

  /** Device bytes its entries hold. */
  get heldBytes(): number { let n = 0; for (const e of this.entries.values()) n += e.bytes; return n; }

  /**
   * Makes room for every key, each an entry of `entryBytes` (allocating the new ones, unfilled),
   * evicting the least recently used others; false, with nothing evicted or kept from this call,
   * where the keys do not fit the budget or the device memory (the request then runs its full steps).
   */
  reserve(keys: readonly string[], entryBytes: number): boolean {
    const wanted = new Set(keys);
    if (wanted.size * entryBytes > this.budgetBytes) return false;
    for (const key of wanted) {
      const e = this.entries.get(key);
      if (e && e.bytes !== entryBytes) fail('step memo', `key '${key}' with entries of ${e.bytes} bytes`, `${entryBytes}`);
      if (e) { this.entries.delete(key); this.entries.set(key, e); } // most recently used last
    }
    let excess = this.heldBytes + [...wanted].filter((k) => !this.entries.has(k)).length * entryBytes - this.budgetBytes;
    for (const [key, e] of this.entries) {
      if (excess <= 0) break;
      if (wanted.has(key)) continue;
      this.d.call('cuMemFree', e.ptr);
      this.entries.delete(key);
      excess -= e.bytes;
    }
    const added: string[] = [];
    try {
      for (const key of wanted) if (!this.entries.has(key)) { this.entries.set(key, { ptr: alloc(this.d, entryBytes, 'step memo entry'), bytes: entryBytes, filled: false }); added.push(key); }
    } catch {
      for (const key of added) { this.d.call('cuMemFree', this.entries.get(key)!.ptr); this.entries.delete(key); }
      return false;
    }
    return true;
  }

  /** A reserved key's entry; `filled` turns true once a fill's copy into it is enqueued. */
  entry(key: string): { ptr: DevicePtr; filled: boolean } {
    return this.entries.get(key) ?? fail('step memo', `a reserved key`, `'${key}'`);
  }

  close(): void {
    for (const e of this.entries.values()) this.d.call('cuMemFree', e.ptr);
    this.entries.clear();
  }
}

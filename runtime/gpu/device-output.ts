/**
 * Outputs left on the device (RunOptions.outputsOnDevice): a module's output returned as a Tensor whose
 * values stay in the module's activation memory until something reads them. Staged into another
 * module on the same device (runtime/gpu/model.ts hostIo), such a Tensor is copied device to device,
 * never through the host: Flux.2's prompt embeddings (15.7 MB at full size) go from the text
 * encoder's output slot into the transformer's input slot, with no host buffer and no copy either way.
 *
 * The first read of `data` allocates the host storage and copies the values there (after that the
 * Tensor is a plain one). The values are there until anything writes that activation memory again:
 * the module's next run, or a run of any module sharing the memory (ArenaShare). Read after that,
 * `data` throws, naming the output: a caller that keeps an output across runs asks for host outputs
 * (the default).
 */
import { fail } from '../../compiler/errors.ts';
import { type DType } from '../../compiler/ir/dtype.ts';
import { Tensor, type TensorData } from '../../compiler/ir/tensor.ts';
import type { DevicePtr, Driver, Handle } from './cuda.ts';

/** Where a device output's values are, and for how long. */
export interface DeviceSource {
  /** The device's ordinal: copied device to device only on it. */
  readonly device: number;
  readonly ptr: DevicePtr;
  readonly bytes: number;
  /** Whether the activation memory still holds the values: nothing has written it since, and its module is open. */
  valid(): boolean;
  /** A copy on another stream reads the values until `event` completes: the next write of that memory waits for it. */
  readBy(event: Handle): void;
}

const sources = new WeakMap<Tensor, DeviceSource>();

/** The device source of a deviceOutput Tensor whose values have not been read to the host; else undefined. */
export function deviceSourceOf(t: Tensor): DeviceSource | undefined {
  return sources.get(t);
}

/**
 * A Tensor whose `data` is made on first read: storage from `allocate` (nothing is allocated before:
 * a zeroed buffer of this size would be cleared page by page wherever the allocator reuses memory),
 * filled by `read` where the source is still valid, else it throws naming `what`.
 */
export function deviceOutput(dtype: DType, shape: readonly number[], allocate: () => Exclude<TensorData, string[]>, source: DeviceSource, read: (into: Uint8Array) => void, what: string): Tensor {
  // The constructor checks the element count only; `data` is replaced by the accessor below before anything can read it.
  const t = new Tensor(dtype, shape, { length: shape.reduce((a, b) => a * b, 1) } as unknown as TensorData);
  sources.set(t, source);
  Object.defineProperty(t, 'data', {
    configurable: true, enumerable: true,
    get() {
      if (!source.valid()) fail(what, 'its values still on the device (an output left there is read before its module, or one sharing its memory, runs again)', 'that memory written by a later run');
      const storage = allocate();
      read(new Uint8Array(storage.buffer, storage.byteOffset, storage.byteLength));
      sources.delete(t);
      Object.defineProperty(t, 'data', { value: storage, enumerable: true });
      return storage;
    },
  });
  return t;
}

/** One activation memory's record of its replicas' writes and of the copies reading outputs left there (runtime/gpu/model.ts ArenaShare has it). */
export interface OutputLedger {
  /** Per replica, its claims so far: an output left there is valid while this is unchanged. */
  readonly generation: number[];
  /** Per replica, events of copies on other streams still reading outputs left there. */
  readonly reads: Handle[][];
}

/**
 * Before anything writes replica r's memory on stream s: the outputs left there are no longer valid,
 * and s waits for the copies still reading them (their events released: a waited event may be destroyed).
 */
export function claimReplica(d: Pick<Driver, 'call'>, ledger: OutputLedger, r: number, s: Handle): void {
  ledger.generation[r]++;
  for (const e of ledger.reads[r].splice(0)) {
    d.call('cuStreamWaitEvent', s, e, 0);
    d.call('cuEventDestroy', e);
  }
}

/** The source of the values at `ptr` in replica r now: valid until r is claimed again, and while `open()`. */
export function replicaSource(ledger: OutputLedger, r: number, device: number, ptr: DevicePtr, bytes: number, open: () => boolean): DeviceSource {
  const generation = ledger.generation[r];
  return {
    device, ptr, bytes,
    valid: () => open() && ledger.generation[r] === generation,
    readBy: (e) => { ledger.reads[r].push(e); },
  };
}

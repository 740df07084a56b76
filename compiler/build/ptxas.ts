/**
 * Parses the resource report of `ptxas -v` (nvcc -Xptxas -v, printed on stderr) into one record
 * per function. The lines it reads (CUDA 12/13):
 *
 *   ptxas info    : Compiling entry function 'add' for 'sm_90a'
 *   ptxas info    : Function properties for add
 *       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
 *   ptxas info    : Used 32 registers, used 1 barriers, 1024 bytes cumulative stack size, 512 bytes smem
 *
 * "Function properties" also appears for non-inlined device functions, which have no "Used" line;
 * they are kept (entry: false) so a spill in a callee is not missed. "Used" belongs to the entry
 * being compiled. Items in the "Used" line are matched one by one, so older forms
 * ("Used 10 registers, 352 bytes cmem[0]") and new items parse alike. Also read: ptxas's note that it
 * serialized a function's wgmma (C7515, "... wgmma.mma_async instructions are serialized due to ... in the
 * function 'NAME'"), a silent loss of most of an MMA kernel's speed.
 */
import type { FunctionResources } from './types.ts';

const COMPILING = /Compiling entry function '([^']+)'/;
const PROPERTIES = /Function properties for '?([^'\s]+)'?/;
const FRAME = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/;
const USED = /ptxas info\s*: Used (\d+) registers(.*)$/;
const SERIALIZED = /\((C\d+)\)[^:]*: wgmma\.mma_async instructions are serialized due to (.*) in the function '([^']+)'/;

export function parsePtxasReport(text: string): FunctionResources[] {
  const byName = new Map<string, FunctionResources>();
  const get = (name: string): FunctionResources => {
    let f = byName.get(name);
    if (!f) {
      f = { name, entry: false, registers: 0, sharedBytes: 0, spillStoreBytes: 0, spillLoadBytes: 0, stackBytes: 0, barriers: 0 };
      byName.set(name, f);
    }
    return f;
  };
  let entry: FunctionResources | undefined;
  let properties: FunctionResources | undefined;
  for (const line of text.split(/\r?\n/)) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(SERIALIZED))) {
      get(m[3]!).wgmmaSerialized = `${m[1]}: ${m[2]}`;
    } else if ((m = line.match(COMPILING))) {
      entry = get(m[1]!);
      entry.entry = true;
      properties = undefined;
    } else if ((m = line.match(PROPERTIES))) {
      properties = get(m[1]!);
    } else if (properties && (m = line.match(FRAME))) {
      properties.stackBytes = Number(m[1]);
      properties.spillStoreBytes = Number(m[2]);
      properties.spillLoadBytes = Number(m[3]);
      properties = undefined;
    } else if (entry && (m = line.match(USED))) {
      entry.registers = Number(m[1]);
      const rest = m[2]!;
      entry.sharedBytes = Number(rest.match(/(\d+) bytes smem/)?.[1] ?? 0);
      entry.barriers = Number(rest.match(/used (\d+) barriers/)?.[1] ?? 0);
    }
  }
  return [...byName.values()];
}

export const spills = (f: FunctionResources): boolean => f.spillStoreBytes > 0 || f.spillLoadBytes > 0;

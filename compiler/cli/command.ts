/**
 * The exit contract every command line here keeps (npx compile, the GPU runtime's run-cli, npx
 * bench): flags parsed strictly, a bad flag or bad input (CompileError) prints one line and exits 1
 * (with --json, also an {error, where, expected, found} object on stdout), a bug prints its stack
 * and exits 70; otherwise the body's own exit code.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { CompileError } from '../errors.ts';

/** parseArgs, with a parse error turned into a CompileError at 'command line' naming the usage. */
export function parseCommandLine<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new CompileError({ where: 'command line', expected: usage, found: (e as Error).message });
  }
}

/** Runs `body` under the exit contract; the body sets `out.json` once it knows the flag. */
export async function runCommand(what: string, body: (out: { json: boolean }) => Promise<number>): Promise<number> {
  const out = { json: false };
  try {
    return await body(out);
  } catch (e) {
    if (e instanceof CompileError) {
      console.error(`error: ${e.message}`);
      if (out.json) console.log(JSON.stringify({ error: e.message, ...e.site }));
      return 1;
    }
    console.error(`internal ${what} error (a bug; please report it with this output):\n${(e as Error).stack ?? e}`);
    return 70;
  }
}

/**
 * `npx compile` as a test calls it: the CLI's main() on each argument list, with the lines it writes
 * to stderr collected (one-line errors), returning each exit code and those lines.
 */
import { main as compileMain } from '../../compiler/cli/compile.ts';

export async function compileCli(...argvs: string[][]): Promise<{ codes: number[]; errors: string[] }> {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(String(line));
  try {
    const codes: number[] = [];
    for (const argv of argvs) codes.push(await compileMain(argv));
    return { codes, errors };
  } finally {
    console.error = original;
  }
}

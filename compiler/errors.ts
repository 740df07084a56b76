/**
 * CompileError: the one error type a user sees.
 *
 * It names where (a file, a node, a flag or a request field), what was expected and what was found,
 * and renders as one line. The CLI prints it without a stack trace and exits non-zero; anything
 * else that escapes is a bug in the compiler and is reported as such.
 */
export interface ErrorSite {
  /** e.g. "models/x/model.onnx", "--shape", "Reshape node '/blocks.0/Reshape'". */
  where: string;
  expected: string;
  found: string;
}

export class CompileError extends Error {
  constructor(readonly site: ErrorSite) {
    super(`${site.where}: expected ${site.expected}, found ${site.found}`);
    this.name = 'CompileError';
  }
}

export function fail(where: string, expected: string, found: string): never {
  throw new CompileError({ where, expected, found });
}

/**
 * Writes an artifact folder atomically: everything goes into a sibling temporary folder first,
 * which replaces the destination only when complete. A failure leaves the previous artifact (if
 * any) untouched and no partial folder behind.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export type ArtifactFiles = Record<string, string | Uint8Array>;

/**
 * `files` is either the files' contents, or a function that receives the (temporary) folder, may
 * stream large files into it itself, and returns the remaining small files.
 */
export async function writeArtifact(dir: string, files: ArtifactFiles | ((folder: string) => ArtifactFiles | Promise<ArtifactFiles>)): Promise<void> {
  mkdirSync(dirname(dir), { recursive: true });
  const partial = join(dirname(dir), `.${basename(dir)}.partial-${process.pid}`);
  const previous = join(dirname(dir), `.${basename(dir)}.previous-${process.pid}`);
  rmSync(partial, { recursive: true, force: true });
  try {
    mkdirSync(partial);
    const contents = typeof files === 'function' ? await files(partial) : files;
    for (const [name, content] of Object.entries(contents)) {
      mkdirSync(dirname(join(partial, name)), { recursive: true });
      writeFileSync(join(partial, name), content);
    }
    if (existsSync(dir)) renameSync(dir, previous);
    renameSync(partial, dir);
    rmSync(previous, { recursive: true, force: true });
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    if (!existsSync(dir) && existsSync(previous)) renameSync(previous, dir);
    throw e;
  }
}

/** A precision policy file (passes/quantize/policy.ts) holding `body`, in a fresh temporary folder: its path. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function policyFile(body: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'policy-')), 'policy.json');
  writeFileSync(file, JSON.stringify(body));
  return file;
}

#!/usr/bin/env node
// `npx bench`: runs the TypeScript bench CLI through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/cli.ts');
// A failed run exits at once: what a half-loaded pipeline leaves behind must not keep Node alive (seen on the GPU host).
const code = await main(process.argv.slice(2));
if (code) process.exit(code);

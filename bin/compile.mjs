#!/usr/bin/env node
// `npx compile`: runs the TypeScript compiler CLI through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../compiler/cli/compile.ts');
process.exitCode = await main(process.argv.slice(2));

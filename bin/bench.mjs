#!/usr/bin/env node
// `npx bench`: runs the TypeScript bench CLI through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/cli.ts');
process.exitCode = await main(process.argv.slice(2));

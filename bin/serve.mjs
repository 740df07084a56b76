#!/usr/bin/env node
// `npx serve`: runs the image server CLI through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../runtime/server/cli.ts');
await main(process.argv.slice(2));

import { defineConfig } from 'vitest/config';

// Tests run on the CPU (CI has no GPU); GPU kernel tests live in test/gpu and run via `npm run test:gpu`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/gpu/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

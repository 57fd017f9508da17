import { defineConfig } from 'vitest/config';

// Fast unit tests and slow end-to-end tests (`*.slow.test.ts`) run together under `npm test`;
// `npm run test:fast` skips the slow tier while iterating.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

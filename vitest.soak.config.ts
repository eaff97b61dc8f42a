import { defineConfig } from 'vitest/config';

/**
 * `npm run test:soak`: the long runs of the hardening tests (issue 8). The same test files as in
 * `npm test`, with more generated cases (FUZZ_SCALE times each property's count) and the full
 * 200 SIGKILLs of the token store's crash test. Both can be set from the environment.
 */
export default defineConfig({
  test: {
    include: ['test/unit/fuzz/**/*.test.ts', 'test/integration/hardening-crash.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/temp-root.ts'],
    env: {
      FUZZ_SCALE: process.env.FUZZ_SCALE ?? '5',
      CRASH_KILLS: process.env.CRASH_KILLS ?? '200',
    },
  },
});

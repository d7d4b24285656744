import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Three forks on two cores: the long files are mostly waiting (round deadlines, process start-up).
    maxWorkers: 3,
  },
});

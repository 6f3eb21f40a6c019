import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Integration tests share one Docker engine and a 2-core machine.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30 * 60_000,
    reporters: ['default'],
  },
});

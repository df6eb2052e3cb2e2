import { defineConfig } from 'vitest/config';

/**
 * The tests that guard the permission boundary, for `npm run test:mutation` (Stryker). Kept to the
 * fast, focused suites so each mutant runs in seconds; the whole suite still runs in CI.
 */
export default defineConfig({
  test: {
    include: [
      'test/access.test.ts',
      'test/filter-translation.test.ts',
      'test/search.recheck.test.ts',
      'test/vectorstore.conformance.test.ts',
      'test/qdrant-schema.test.ts',
      'test/explain.property.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * The tests that guard the permission boundary, for `npm run test:mutation` (Stryker). Kept to
 * focused suites that do their boundary work inside tests, not in beforeAll: Stryker counts code
 * run outside a test as "static" coverage and re-runs every test for each such mutant. The
 * end-to-end suites over the harness (explain.property, search.recheck) cover the same code
 * through search in `npm test`; explain.test.ts and guard.test.ts are their fast counterparts here.
 */
export default defineConfig({
  test: {
    include: [
      'test/access.test.ts',
      'test/filter-translation.test.ts',
      'test/explain.test.ts',
      'test/guard.test.ts',
      'test/vectorstore.conformance.test.ts',
      'test/qdrant-schema.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

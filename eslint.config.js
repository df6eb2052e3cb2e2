// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * A small rule set the code passes as written: the recommended checks of ESLint and
 * typescript-eslint, plus the layering rules that keep dependencies pointing down
 * (docs/architecture.md). CI runs it (`npm run lint`).
 */
// Folders of src, and src's top-level composition modules; a folder's files reach them by ../ or ../../.
const ROOT_FILES = new Set(['services', 'context']);
const upward = (from, banned) => ({
  files: [`${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: banned.map((name) => ({
        group: ROOT_FILES.has(name) ? [`../${name}.ts`, `../../${name}.ts`] : [`../${name}/*`, `../../${name}/*`, `**/${name}/**`],
        message: `${from} must not depend on ${name} (dependencies point down; see docs/architecture.md)`,
      })),
    }],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'reports/**', '.stryker-tmp/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'smart'],
      'no-console': 'off',
      'prefer-const': 'error',
    },
  },
  // Nothing in src imports the process entry points in workers/.
  { files: ['src/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/workers/**'], message: 'src must not import workers/ (entry points import src, not the other way round)' }] }] } },
  upward('src/access', ['api', 'retrieval', 'indexer', 'jobs', 'connectors', 'vectorstore', 'metadata', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/connectors', ['api', 'retrieval', 'indexer', 'jobs', 'vectorstore', 'metadata', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/vectorstore', ['api', 'retrieval', 'indexer', 'jobs', 'connectors', 'metadata', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/indexer', ['api', 'retrieval', 'jobs', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/metadata', ['api', 'retrieval', 'indexer', 'jobs', 'connectors', 'vectorstore', 'sources', 'services', 'context', 'workers']),
  upward('src/retrieval', ['api', 'indexer', 'jobs', 'connectors', 'sources', 'services', 'workers']),
  upward('src/freshness', ['api', 'retrieval', 'indexer', 'connectors', 'vectorstore', 'sources', 'services', 'workers']),
  upward('src/embedder', ['api', 'retrieval', 'indexer', 'jobs', 'connectors', 'vectorstore', 'metadata', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/extract', ['api', 'retrieval', 'indexer', 'jobs', 'connectors', 'vectorstore', 'metadata', 'freshness', 'sources', 'services', 'context', 'workers']),
  upward('src/api', ['services', 'workers', 'cli']),
);

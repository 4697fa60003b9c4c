// Lint: the recommended JS and TypeScript rules, plus the project's hard rules: protocol code
// never reads the wall clock or sets its own timers (time is injected); the core (src/) imports
// nothing outside itself, and src/wire/ nothing outside src/wire/. (That imports inside src/ point
// down a layer is checked by test/unit/layers.test.ts.)
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const OUT_OF_SRC = 'src/ is the core: it imports nothing outside src/ (hal/, boards/, tools/, bench/, test/ are adapters and composition above it).';

/**
 * A relative import leaves src/ when it climbs more folders than the file is deep: from
 * src/x/y/file.ts, '../../../' is the repository root. One block per depth, because the rule
 * sees the import's text, not where it resolves.
 */
const coreStaysInside = [1, 2, 3, 4, 5].map((depth) => ({
  files: [`src/${'*/'.repeat(depth - 1)}*.ts`],
  ignores: ['src/wire/**'],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [{ regex: `^(\\.\\./){${depth}}`, message: OUT_OF_SRC }],
    }],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'boards/**/build/**', '**/*.hex', 'coverage/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/time/real-clock.ts'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use the injected Clock (src/time).' },
        { name: 'setInterval', message: 'Use the injected Clock (src/time).' },
        { name: 'performance', message: 'Use the injected Clock (src/time).' }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Use the injected Clock (src/time).' }],
    },
  },
  {
    // The examples and build scripts are plain Node programs.
    files: ['examples/**/*.mjs', 'scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', Buffer: 'readonly' } },
  },
  ...coreStaysInside,
  {
    // Wire code is pure: bytes in, views and reprs out, nothing from any other layer.
    files: ['src/wire/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!\\./)', message: 'src/wire/ imports only src/wire/ (its own folder).' }],
      }],
    },
  },
  {
    // The operator console's page: plain browser JavaScript, served as is (no build step).
    files: ['tools/console/assets/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', window: 'readonly', Node: 'readonly', EventSource: 'readonly', fetch: 'readonly', ResizeObserver: 'readonly', uPlot: 'readonly' },
    },
  },
);

// Lint: the recommended JS and TypeScript rules, plus the project's one hard rule:
// protocol code never reads the wall clock or sets its own timers (time is injected).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'boards/**/build/**', '**/*.hex', 'coverage/**', 'tmp/**'] },
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
);

// Lint: typescript-eslint's type-checked rules over our own code (generated types excluded).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** `files` may not import from the named folders of src/ (relative imports, as all of ours are). */
function layer(files, forbidden, why) {
  return [
    {
      files: [files],
      rules: {
        'no-restricted-imports': ['error', { patterns: [{ group: forbidden.map((f) => `../${f}/*`), message: why }] }],
      },
    },
  ];
}

export default tseslint.config(
  { ignores: ['dist/', 'src/gen/', 'node_modules/', '.tools/', '.dev/', 'policies/build/', 'proto/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'bench/lib/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  // Module edges (docs/architecture.md): which folders of src/ may import which. One entry per
  // folder; a folder not listed here may import any folder below it in that document.
  ...layer('src/lib/**', ['authn', 'check', 'cli', 'dev', 'envoy', 'identity', 'policy', 'ratelimit', 'server'], 'lib/ holds small shared helpers: it depends on nothing above it'),
  ...layer('src/config/**', ['authn', 'check', 'cli', 'dev', 'envoy', 'identity', 'policy', 'ratelimit', 'server', 'telemetry'], 'config/ is read by everyone and reads no one'),
  ...layer('src/policy/**', ['authn', 'check', 'cli', 'dev', 'envoy', 'identity', 'ratelimit', 'server'], 'policy/ receives a policy input; envoy/ builds it at the edge'),
  ...layer('src/ratelimit/**', ['authn', 'check', 'cli', 'dev', 'envoy', 'identity', 'policy', 'server'], 'ratelimit/ is the limiter and its stores; the gRPC adapter lives in server/'),
  ...layer('src/envoy/**', ['authn', 'cli', 'dev', 'ratelimit', 'server'], 'envoy/ holds pure translators, called only at the edges'),
  ...layer('src/authn/**', ['check', 'cli', 'dev', 'policy', 'ratelimit', 'server'], 'authn/ verifies credentials; composing them per route is check/'),
  ...layer('src/identity/**', ['check', 'cli', 'dev', 'policy', 'ratelimit', 'server'], 'identity/ canonicalizes and mints; it does not know the pipeline'),
  ...layer('src/telemetry/**', ['authn', 'cli', 'dev', 'identity', 'policy', 'ratelimit', 'server'], 'telemetry/ is used by every layer'),
  ...layer('src/openapi/**', ['authn', 'check', 'cli', 'dev', 'identity', 'policy', 'ratelimit', 'server'], 'openapi/ validates a request view against its specs; the pipeline in check/ calls it'),
  ...layer('src/check/**', ['cli', 'dev', 'server'], 'check/ is the pipeline; the gRPC adapters in server/ call it'),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  // Plain ESM preloaded into a server under test (node --import) cannot be TypeScript.
  { files: ['eslint.config.js', 'bench/lib/*.mjs'], ...tseslint.configs.disableTypeChecked },
);

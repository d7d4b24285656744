// Lint for fedsynth: typescript-eslint's recommended rules, prettier for layout, and the layer
// table of docs/architecture.md as a rule, so that the documented architecture stays the real one.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import path from 'node:path';

/** Top-level folder → top-level folders it may import (docs/architecture.md, "Layers"). */
export const LAYERS = {
  proto: [],
  schema: [],
  privacy: [],
  pki: ['proto'],
  ops: [],
  model: ['privacy', 'schema'],
  modalities: ['model', 'schema'],
  federation: ['privacy', 'model', 'schema'],
  synthesis: ['model', 'modalities', 'schema'],
  simulator: ['model', 'modalities', 'schema'],
  'site-agent': ['privacy', 'model', 'modalities', 'schema', 'proto', 'federation', 'ops'],
  coordinator: ['privacy', 'model', 'modalities', 'synthesis', 'schema', 'proto', 'federation', 'ops'],
  cli: '*',
  bench: '*',
  tests: '*',
  deploy: [],
};

const ROOT = path.dirname(new URL(import.meta.url).pathname);

function topFolder(file) {
  const rel = path.relative(ROOT, file);
  if (rel.startsWith('..')) return undefined;
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0] : undefined;
}

const layerRule = {
  meta: { type: 'problem', docs: { description: 'imports follow the layer table of docs/architecture.md' }, schema: [] },
  create(context) {
    const from = topFolder(context.filename);
    const allowed = from === undefined ? '*' : LAYERS[from];
    function check(node, source) {
      if (!source || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const to = topFolder(path.resolve(path.dirname(context.filename), source.value));
      if (to === undefined || to === from || allowed === '*') return;
      if (allowed === undefined) {
        context.report({ node, message: `folder '${from}/' is missing from the layer table (eslint.config.js, docs/architecture.md)` });
      } else if (!allowed.includes(to)) {
        context.report({
          node,
          message: `'${from}/' may not import '${to}/' (layer table in docs/architecture.md: ${from}/ may import ${allowed.length ? allowed.map((a) => a + '/').join(' ') : 'nothing outside itself'})`,
        });
      }
    }
    return {
      ImportDeclaration: (n) => check(n, n.source),
      ExportNamedDeclaration: (n) => check(n, n.source),
      ExportAllDeclaration: (n) => check(n, n.source),
      ImportExpression: (n) => check(n, n.source.type === 'Literal' ? n.source : undefined),
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', '.tmp/', 'proto/generated/', 'deploy/helm/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.{ts,mts,js,mjs}'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        performance: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        WebAssembly: 'readonly',
        AbortController: 'readonly',
        structuredClone: 'readonly',
        fetch: 'readonly',
        queueMicrotask: 'readonly',
        crypto: 'readonly',
        globalThis: 'readonly',
      },
    },
    plugins: { fedsynth: { rules: { layers: layerRule } } },
    rules: {
      'fedsynth/layers': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
      // `as never` hides a type error instead of fixing it.
      'no-restricted-syntax': [
        'error',
        { selector: 'TSAsExpression > TSNeverKeyword', message: 'no `as never`: give the value its real type' },
      ],
      'max-lines': ['warn', { max: 500, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // Tests feed deliberately malformed values, which `any` states honestly.
    files: ['tests/**'],
    rules: { 'max-lines-per-function': 'off', 'max-lines': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);

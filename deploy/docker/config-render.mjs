#!/usr/bin/env node
// Renders a fedsynth config file with secret values read from files, so that secrets (a
// PostgreSQL URL with its password, a FHIR server bearer token) never sit in a ConfigMap or a
// values file. Used by the Helm chart's init containers; usable anywhere.
//
//   node config-render.mjs --in coordinator.yaml --out /run/fedsynth/coordinator.yaml \
//        --set-file storage.postgres=/var/run/secrets/fedsynth-db/url
//
// --set-file PATH=FILE sets the dotted key PATH to FILE's contents (surrounding whitespace
// trimmed), creating mappings on the way. Setting one key of a mapping that must hold exactly
// one of several keys (storage: pglite | postgres) replaces that mapping's other keys when
// --replace-parent is given. The output is written with mode 0600.
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';

export function setPath(doc, dotted, value, replaceParent = false) {
  const keys = dotted.split('.');
  if (keys.some((k) => k.length === 0)) throw new Error(`bad key path ${JSON.stringify(dotted)}`);
  let node = doc;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    const next = node[k];
    if (next === undefined || next === null) node[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) throw new Error(`${keys.slice(0, i + 1).join('.')} is not a mapping`);
    node = node[k];
  }
  const last = keys[keys.length - 1];
  if (replaceParent) for (const k of Object.keys(node)) if (k !== last) delete node[k];
  node[last] = value;
  return doc;
}

export function render(text, sets, replaceParent = false) {
  const doc = YAML.parse(text) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('config must be a mapping');
  for (const { path, file } of sets) setPath(doc, path, readFileSync(file, 'utf8').trim(), replaceParent);
  return YAML.stringify(doc);
}

function parseArgs(argv) {
  const out = { sets: [], replaceParent: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--in') out.in = argv[++i];
    else if (a === '--out') out.out = argv[++i];
    else if (a === '--replace-parent') out.replaceParent = true;
    else if (a === '--set-file') {
      const spec = argv[++i] ?? '';
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new Error(`--set-file wants PATH=FILE, got ${JSON.stringify(spec)}`);
      out.sets.push({ path: spec.slice(0, eq), file: spec.slice(eq + 1) });
    } else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!out.in || !out.out)
    throw new Error('usage: config-render.mjs --in FILE --out FILE [--set-file key.path=FILE ...] [--replace-parent]');
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const args = parseArgs(process.argv.slice(2));
    const text = render(readFileSync(args.in, 'utf8'), args.sets, args.replaceParent);
    writeFileSync(args.out, text, { mode: 0o600 });
    chmodSync(args.out, 0o600);
    process.stdout.write(`config-render: wrote ${args.out} (${args.sets.map((s) => s.path).join(', ') || 'no secrets'})\n`);
  } catch (err) {
    process.stderr.write(`config-render: ${err.message}\n`);
    process.exit(1);
  }
}

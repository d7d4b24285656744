/**
 * Canonical JSON for hashing (audit chain, idempotency digests): object keys sorted by UTF-16
 * code unit order, no whitespace, JSON.stringify's encoding of strings and numbers. Rejects what
 * JSON cannot represent faithfully (undefined, functions, symbols, bigint, non-finite numbers)
 * instead of silently dropping or nulling it.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(v: unknown, where: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: non-finite number at ${where}`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x, i) => encode(x, `${where}[${i}]`)).join(',')}]`;
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      if (v instanceof Uint8Array) {
        throw new TypeError(`canonicalJson: binary value at ${where} (encode it as hex/base64)`);
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(obj[k], `${where}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: unsupported ${typeof v} at ${where}`);
  }
}

export function sha256Hex(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

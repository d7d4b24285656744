// The field checker used by the schema parser: every problem is collected with its path so one run
// reports all of them instead of stopping at the first.
import type { SchemaIssue } from './types.ts';

export type Obj = Record<string, unknown>;

export class Checker {
  readonly issues: SchemaIssue[] = [];
  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }
  describe(v: unknown): string {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'a list';
    if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
    if (typeof v === 'object') return 'a mapping';
    return `${typeof v} ${String(v)}`;
  }
  object(v: unknown, path: string): Obj | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.fail(path, `must be a mapping, got ${this.describe(v)}`);
      return undefined;
    }
    return v as Obj;
  }
  /** Reports keys that are not in `allowed` (typos must not pass silently). */
  keys(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(join(path, k), `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
  required(o: Obj, key: string, path: string): unknown {
    if (!(key in o) || o[key] === undefined || o[key] === null) {
      this.fail(join(path, key), 'is required');
      return undefined;
    }
    return o[key];
  }
  string(o: Obj, key: string, path: string, pattern?: RegExp, patternText?: string): string | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      this.fail(join(path, key), `must be a non-empty string, got ${this.describe(v)}`);
      return undefined;
    }
    if (pattern && !pattern.test(v)) {
      this.fail(join(path, key), `${JSON.stringify(v)} does not match ${patternText ?? pattern.source}`);
      return undefined;
    }
    return v;
  }
  number(
    o: Obj,
    key: string,
    path: string,
    opts: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
  ): number | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    return this.numberValue(v, join(path, key), opts);
  }
  numberValue(
    v: unknown,
    path: string,
    opts: { integer?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
  ): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(path, `must be a finite number, got ${this.describe(v)}`);
      return undefined;
    }
    if (opts.integer && !Number.isInteger(v)) {
      this.fail(path, `must be an integer, got ${v}`);
      return undefined;
    }
    if (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) {
      this.fail(path, `must be ${opts.minExclusive ? '>' : '≥'} ${opts.min}, got ${v}`);
      return undefined;
    }
    if (opts.max !== undefined && (opts.maxExclusive ? v >= opts.max : v > opts.max)) {
      this.fail(path, `must be ${opts.maxExclusive ? '<' : '≤'} ${opts.max}, got ${v}`);
      return undefined;
    }
    return v;
  }
  list(o: Obj, key: string, path: string, minLength = 1): unknown[] | undefined {
    const v = this.required(o, key, path);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.fail(join(path, key), `must be a list, got ${this.describe(v)}`);
      return undefined;
    }
    if (v.length < minLength) {
      this.fail(join(path, key), `must have at least ${minLength} entr${minLength === 1 ? 'y' : 'ies'}, got ${v.length}`);
      return undefined;
    }
    return v;
  }
  /** A list of strictly increasing finite numbers. */
  edges(o: Obj, key: string, path: string, opts: { integer?: boolean; min?: number } = {}): number[] | undefined {
    const list = this.list(o, key, path);
    if (!list) return undefined;
    const p = join(path, key);
    const out: number[] = [];
    let ok = true;
    list.forEach((v, i) => {
      const n = this.numberValue(v, `${p}[${i}]`, { integer: opts.integer, min: opts.min });
      if (n === undefined) {
        ok = false;
        return;
      }
      if (out.length > 0 && n <= out[out.length - 1]) {
        this.fail(`${p}[${i}]`, `edges must be strictly increasing, got ${n} after ${out[out.length - 1]}`);
        ok = false;
      }
      out.push(n);
    });
    return ok ? out : undefined;
  }
  stringList(o: Obj, key: string, path: string, pattern?: RegExp, patternText?: string): string[] | undefined {
    const list = this.list(o, key, path);
    if (!list) return undefined;
    const p = join(path, key);
    const out: string[] = [];
    const seen = new Set<string>();
    let ok = true;
    list.forEach((v, i) => {
      // YAML turns unquoted numeric codes (e.g. SNOMED 38341003) into numbers: accept integers.
      const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
      if (typeof s !== 'string' || s.trim() === '') {
        this.fail(`${p}[${i}]`, `must be a non-empty string, got ${this.describe(v)}`);
        ok = false;
        return;
      }
      if (pattern && !pattern.test(s)) {
        this.fail(`${p}[${i}]`, `${JSON.stringify(s)} does not match ${patternText ?? pattern.source}`);
        ok = false;
        return;
      }
      if (seen.has(s)) {
        this.fail(`${p}[${i}]`, `duplicate entry ${JSON.stringify(s)}`);
        ok = false;
        return;
      }
      seen.add(s);
      out.push(s);
    });
    return ok ? out : undefined;
  }
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

// Reads a YAML or JSON config file into a plain object with errors that name the file.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';

export class ConfigError extends Error {}

export interface LoadedConfigFile {
  path: string;
  dir: string;
  raw: Record<string, unknown>;
}

export function loadConfigFile(path: string): LoadedConfigFile {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${abs}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${abs} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`config ${abs} must be a mapping`);
  return { path: abs, dir: dirname(abs), raw: raw as Record<string, unknown> };
}

/** Typed field readers that report the file and the dotted path of a bad value. */
export class Fields {
  constructor(
    private readonly file: string,
    private readonly obj: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private where(key: string): string {
    return `${this.file}: ${this.prefix}${key}`;
  }

  /** The value as written (for settings that take more than one shape). */
  raw(key: string): unknown {
    return this.obj[key];
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  string(key: string, fallback?: string): string {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${this.where(key)} is required`);
    }
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${this.where(key)} must be a non-empty string`);
    return v;
  }

  number(key: string, fallback?: number, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${this.where(key)} is required`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${this.where(key)} must be a number`);
    if (opts.integer && !Number.isInteger(v)) throw new ConfigError(`${this.where(key)} must be an integer`);
    if (opts.min !== undefined && v < opts.min) throw new ConfigError(`${this.where(key)} must be ≥ ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw new ConfigError(`${this.where(key)} must be ≤ ${opts.max}`);
    return v;
  }

  /** A path relative to the config file's folder. */
  path(key: string, baseDir: string, fallback?: string): string {
    return resolve(baseDir, this.string(key, fallback));
  }

  stringList(key: string, fallback?: string[]): string[] {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${this.where(key)} is required`);
    }
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new ConfigError(`${this.where(key)} must be a list of non-empty strings`);
    }
    return v as string[];
  }

  section(key: string, required = true): Fields {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (!required) return new Fields(this.file, {}, `${this.prefix}${key}.`);
      throw new ConfigError(`${this.where(key)} is required`);
    }
    if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${this.where(key)} must be a mapping`);
    return new Fields(this.file, v as Record<string, unknown>, `${this.prefix}${key}.`);
  }

  /** Refuses keys this reader does not know: a typo in a privacy setting must not pass silently. */
  onlyKeys(allowed: string[]): void {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) throw new ConfigError(`${this.where(k)} is not a known setting (known: ${allowed.join(', ')})`);
    }
  }
}

// Minimal flag parsing shared by the CLI commands: --name value or --name=value, with a clear
// error for anything unknown, missing or repeated.
export class UsageError extends Error {}

export interface FlagSpec {
  [name: string]: 'string' | 'boolean';
}

export function parseFlags(args: string[], spec: FlagSpec): { flags: Record<string, string | boolean>; positional: string[] } {
  const flags: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const kind = spec[name];
    if (!kind)
      throw new UsageError(
        `unknown flag --${name} (known: ${Object.keys(spec)
          .map((k) => `--${k}`)
          .join(', ')})`,
      );
    if (name in flags) throw new UsageError(`flag --${name} given twice`);
    if (kind === 'boolean') {
      if (eq > 0) throw new UsageError(`flag --${name} takes no value`);
      flags[name] = true;
    } else {
      const value = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError(`flag --${name} needs a value`);
      flags[name] = value;
    }
  }
  return { flags, positional };
}

export function intFlag(flags: Record<string, string | boolean>, name: string, fallback: number, min: number, max: number): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

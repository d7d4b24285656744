// The one flag parser of the `fedsynth` command. A command declares its flags once (type, range,
// default, help line); parsing, validation, error messages and `--help` text all come from that
// declaration, so they cannot disagree.
//
//   --name value  or  --name=value;  -h / --help anywhere prints the command's help.

/** A command-line mistake; the message names the flag and what was expected. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The command whose `--help` explains the fix, e.g. `fedsynth provision add-site`. */
  command?: string;
  constructor(message: string, command?: string) {
    super(message);
    if (command) this.command = command;
  }
}

/** Thrown by parseArgs when -h/--help is given: the caller prints `text` and exits 0. */
export class HelpRequest extends Error {
  override name = 'HelpRequest';
  constructor(readonly text: string) {
    super('help requested');
  }
}

interface Described {
  help: string;
  /** Placeholder in the help text, e.g. DIR or FILE.csv. */
  value?: string;
  required?: boolean;
}

export type FlagDef =
  | { type: 'boolean'; help: string }
  | (Described & { type: 'string' | 'path'; default?: string })
  | (Described & { type: 'int'; min: number; max: number; default?: number })
  | (Described & { type: 'number'; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; default?: number })
  | (Described & { type: 'enum'; values: readonly string[]; default?: string })
  | (Described & { type: 'list'; values?: readonly string[]; default?: readonly string[] });

export type Flags = Record<string, FlagDef>;

export interface CommandSpec<F extends Flags = Flags> {
  /** The full command, e.g. `fedsynth provision add-site`. */
  command: string;
  /** What the command does, one or more lines. */
  summary: string;
  flags: F;
  /** Positional arguments; without this, any positional argument is an error. */
  positionals?: { name: string; min: number; max: number; help: string };
  /** More help text after the flags (file layouts, examples). */
  notes?: string;
}

type Base<D> = D extends { type: 'int' | 'number' }
  ? number
  : D extends { type: 'list' }
    ? string[]
    : D extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : string;
type Value<D> = D extends { type: 'boolean' }
  ? boolean
  : D extends { required: true }
    ? Base<D>
    : D extends { default: unknown }
      ? Base<D>
      : Base<D> | undefined;

export type FlagValues<F extends Flags> = { -readonly [K in keyof F]: Value<F[K]> };

export interface Parsed<F extends Flags> {
  flags: FlagValues<F>;
  positional: string[];
}

/** Declares a command; `const` keeps literal defaults and enum values in the flag types. */
export function command<const F extends Flags>(spec: CommandSpec<F>): CommandSpec<F> {
  return spec;
}

/** Parses `args` against the command's declaration; throws UsageError or HelpRequest. */
export function parseArgs<F extends Flags>(spec: CommandSpec<F>, args: readonly string[]): Parsed<F> {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequest(helpText(spec));
  const fail = (message: string): never => {
    throw new UsageError(message, spec.command);
  };
  const raw = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--') || arg === '--') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const def = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;
    if (!def) fail(`unknown flag --${name} (known: ${knownFlags(spec)})`);
    if (raw.has(name)) fail(`--${name} given more than once`);
    if (def!.type === 'boolean') {
      if (eq > 0) fail(`--${name} takes no value`);
      raw.set(name, true);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value.trim() === '' || (eq < 0 && value.startsWith('--'))) fail(`--${name} needs a value`);
    raw.set(name, value);
  }
  const p = spec.positionals;
  if (!p && positional.length > 0) fail(`unexpected argument ${JSON.stringify(positional[0])}`);
  if (p && positional.length < p.min) fail(`missing ${p.name} (${p.help})`);
  if (p && positional.length > p.max) fail(`expected at most ${p.max} ${p.name}, got ${positional.length}: ${positional.join(' ')}`);
  const flags: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(spec.flags)) {
    const v = raw.get(name);
    if (def.type === 'boolean') flags[name] = v === true;
    else if (typeof v === 'string') flags[name] = convert(name, def, v, fail);
    else if (def.required) fail(`missing required flag --${name}`);
    else flags[name] = def.default === undefined ? undefined : Array.isArray(def.default) ? [...def.default] : def.default;
  }
  return { flags: flags as FlagValues<F>, positional };
}

type NonBoolean = Exclude<FlagDef, { type: 'boolean' }>;

function convert(name: string, def: NonBoolean, v: string, fail: (m: string) => never): unknown {
  const flag = `--${name}`;
  switch (def.type) {
    case 'string':
    case 'path':
      return v;
    case 'int': {
      const n = Number(v);
      if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < def.min || n > def.max) {
        fail(`${flag} must be an integer from ${def.min} to ${def.max}, got ${JSON.stringify(v)}`);
      }
      return n === 0 ? 0 : n; // "-0" is 0, not -0
    }
    case 'number': {
      const n = Number(v);
      const low = def.min === undefined ? true : def.minExclusive ? n > def.min : n >= def.min;
      const high = def.max === undefined ? true : def.maxExclusive ? n < def.max : n <= def.max;
      if (v.trim() === '' || !Number.isFinite(n) || !low || !high) fail(`${flag} must be ${numberRange(def)}, got ${JSON.stringify(v)}`);
      return n;
    }
    case 'enum':
      if (!def.values.includes(v)) fail(`${flag} must be one of ${def.values.join(', ')}, got ${JSON.stringify(v)}`);
      return v;
    case 'list': {
      const items = v.split(',').map((s) => s.trim());
      if (items.some((s) => s === '')) fail(`${flag} has an empty entry in ${JSON.stringify(v)} (use a,b,c)`);
      const unknown = def.values ? items.find((s) => !def.values!.includes(s)) : undefined;
      if (unknown !== undefined) fail(`${flag}: unknown entry ${JSON.stringify(unknown)} (known: ${def.values!.join(', ')})`);
      const dup = items.find((s, i) => items.indexOf(s) !== i);
      if (dup !== undefined) fail(`${flag} lists ${JSON.stringify(dup)} twice`);
      return items;
    }
  }
}

function numberRange(def: Extract<FlagDef, { type: 'number' }>): string {
  if (def.min !== undefined && def.max !== undefined) {
    return `a number in ${def.minExclusive ? '(' : '['}${def.min}, ${def.max}${def.maxExclusive ? ')' : ']'}`;
  }
  if (def.min !== undefined) return `a number ${def.minExclusive ? '>' : '≥'} ${def.min}`;
  if (def.max !== undefined) return `a number ${def.maxExclusive ? '<' : '≤'} ${def.max}`;
  return 'a finite number';
}

function knownFlags(spec: CommandSpec): string {
  return [...Object.keys(spec.flags).map((k) => `--${k}`), '--help'].join(', ');
}

function placeholder(def: FlagDef): string {
  if (def.type === 'boolean') return '';
  if (def.value) return def.value;
  switch (def.type) {
    case 'int':
      return 'N';
    case 'number':
      return 'X';
    case 'enum':
      return def.values.join('|');
    case 'list':
      return def.values ? def.values.join(',') : 'A,B,…';
    case 'path':
      return 'FILE';
    default:
      return 'VALUE';
  }
}

function describe(def: FlagDef): string {
  if (def.type === 'boolean') return def.help;
  const extra: string[] = [];
  if (def.required) extra.push('required');
  if (def.type === 'int') extra.push(`${def.min}–${def.max}`);
  if (def.default !== undefined) extra.push(`default ${Array.isArray(def.default) ? def.default.join(',') : String(def.default)}`);
  return extra.length ? `${def.help} (${extra.join('; ')})` : def.help;
}

/** The `--help` text of a command, generated from its declaration. */
export function helpText(spec: CommandSpec): string {
  const entries = Object.entries(spec.flags);
  const synopsis = [
    spec.command,
    ...(spec.positionals ? [spec.positionals.min > 0 ? spec.positionals.name : `[${spec.positionals.name}]`] : []),
    ...entries.map(([name, def]) => {
      const usage = def.type === 'boolean' ? `--${name}` : `--${name} ${placeholder(def)}`;
      return def.type !== 'boolean' && def.required ? usage : `[${usage}]`;
    }),
  ].join(' ');
  const rows: Array<[string, string]> = entries.map(([name, def]) => [
    def.type === 'boolean' ? `--${name}` : `--${name} ${placeholder(def)}`,
    describe(def),
  ]);
  if (spec.positionals) rows.unshift([spec.positionals.name, spec.positionals.help]);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, r]) => `  ${l.padEnd(width)}${l.length >= width ? `\n  ${' '.repeat(width)}` : ''}${r}`);
  return `usage: ${synopsis}\n\n${spec.summary}\n\n${lines.join('\n')}\n${spec.notes ? `\n${spec.notes}\n` : ''}`;
}

/** What `fedsynth` prints for a UsageError: the message and where to find the help. */
export function usageMessage(err: UsageError, fallbackCommand: string): string {
  const cmd = err.command ?? fallbackCommand;
  return `${cmd}: ${err.message}\nRun \`${cmd} --help\` for usage.\n`;
}

/** Help of a command group (`fedsynth audit`): its subcommands with one line each. */
export function groupHelp(command: string, summary: string, subcommands: ReadonlyArray<readonly [name: string, summary: string]>): string {
  const width = Math.max(...subcommands.map(([n]) => n.length)) + 2;
  const lines = subcommands.map(([n, s]) => `  ${n.padEnd(width)}${s}`);
  return `usage: ${command} <command> [flags]\n\n${summary}\n\nCommands:\n${lines.join('\n')}\n\nRun \`${command} <command> --help\` for the flags of one command.\n`;
}

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CommandIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/**
 * Runs a command with its own output: `--help` goes to `io.out` (exit 0), a UsageError to
 * `io.err` with the pointer to `--help` (exit 2); anything else propagates.
 */
export async function runCommand(command: string, io: CommandIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof HelpRequest) {
      io.out(err.text);
      return 0;
    }
    if (err instanceof UsageError) {
      io.err(usageMessage(err, command));
      return 2;
    }
    throw err;
  }
}

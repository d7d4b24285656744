// argv handling for `fedsynth provision` (the CLI main dispatches here with the arguments that
// follow the word `provision`).
import { relative } from 'node:path';
import {
  DEFAULT_COORDINATOR_HOSTS,
  DEFAULT_VALIDITY_DAYS,
  addSite,
  provisionFederation,
  type AddSiteOptions,
  type ProvisionOptions,
} from '../pki/provision.ts';
import { ProvisionError } from '../pki/x509.ts';

export const PROVISION_USAGE = `Usage:
  fedsynth provision --out DIR --federation ID --sites a,b,c [--hosts h1,h2] [--days N] [--ca-days N]
  fedsynth provision add-site NAME --out DIR [--days N]

Creates a federation CA and startup kits:
  DIR/ca/{ca.pem,ca.key}                      keep ca.key offline; it only serves add-site
  DIR/coordinator/{ca.pem,cert.pem,key.pem}   for the coordinator
  DIR/sites/<id>/{ca.pem,cert.pem,key.pem}    one per site, hand each to its hospital

Options:
  --out DIR          output directory (required)
  --federation ID    federation id (required for a new federation)
  --sites a,b,c      comma-separated site ids: a-z, 0-9, '-', up to 63 characters (required)
  --hosts h1,h2      names/IPs the coordinator is reached at (default ${DEFAULT_COORDINATOR_HOSTS.join(',')})
  --days N           validity of coordinator and site certificates in days (default ${DEFAULT_VALIDITY_DAYS})
  --ca-days N        validity of the CA in days (default max(--days, 3650))
  -h, --help         show this help
`;

/** A command-line mistake; the message says what to fix. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type ParsedProvisionCommand =
  { command: 'help' } | { command: 'provision'; options: ProvisionOptions } | { command: 'add-site'; options: AddSiteOptions };

const VALUE_FLAGS = {
  provision: ['--out', '--federation', '--sites', '--hosts', '--days', '--ca-days'],
  'add-site': ['--out', '--days'],
} as const;

function parseFlags(args: string[], allowed: readonly string[], mode: string): { flags: Map<string, string>; positionals: string[] } {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name = arg;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      name = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    }
    if (!allowed.includes(name)) {
      throw new UsageError(
        `unknown option ${name} for \`fedsynth provision${mode === 'add-site' ? ' add-site' : ''}\` (allowed: ${allowed.join(', ')})`,
      );
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`option ${name} needs a value`);
      value = next;
      i++;
    }
    if (flags.has(name)) throw new UsageError(`option ${name} given more than once`);
    if (value === '') throw new UsageError(`option ${name} needs a non-empty value`);
    flags.set(name, value);
  }
  return { flags, positionals };
}

function parseDays(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 36_500) {
    throw new UsageError(`${flag} must be a whole number of days between 1 and 36500, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function parseList(flag: string, raw: string): string[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`${flag} has an empty entry in ${JSON.stringify(raw)} (use a,b,c)`);
  return items;
}

function required(flags: Map<string, string>, name: string, what: string): string {
  const v = flags.get(name);
  if (v === undefined) throw new UsageError(`missing ${name} ${what}`);
  return v;
}

/** Parses the arguments after `provision`. Throws UsageError with a readable message. */
export function parseProvisionArgs(args: string[]): ParsedProvisionCommand {
  if (args.includes('--help') || args.includes('-h') || args[0] === 'help') return { command: 'help' };
  if (args[0] === 'add-site') {
    const { flags, positionals } = parseFlags(args.slice(1), VALUE_FLAGS['add-site'], 'add-site');
    if (positionals.length === 0) throw new UsageError('add-site needs the new site id: fedsynth provision add-site NAME --out DIR');
    if (positionals.length > 1) throw new UsageError(`add-site takes one site id, got ${positionals.length}: ${positionals.join(' ')}`);
    const options: AddSiteOptions = {
      outDir: required(flags, '--out', 'DIR (the directory given to `fedsynth provision --out`)'),
      siteId: positionals[0],
    };
    const days = parseDays('--days', flags.get('--days'));
    if (days !== undefined) options.validityDays = days;
    return { command: 'add-site', options };
  }
  const { flags, positionals } = parseFlags(args, VALUE_FLAGS.provision, 'provision');
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (subcommands: add-site; see --help)`);
  }
  const options: ProvisionOptions = {
    outDir: required(flags, '--out', 'DIR'),
    federationId: required(flags, '--federation', 'ID'),
    sites: parseList('--sites', required(flags, '--sites', 'a,b,c (the site ids)')),
    validityDays: parseDays('--days', flags.get('--days')) ?? DEFAULT_VALIDITY_DAYS,
  };
  const hosts = flags.get('--hosts');
  if (hosts !== undefined) options.coordinatorHosts = parseList('--hosts', hosts);
  const caDays = parseDays('--ca-days', flags.get('--ca-days'));
  if (caDays !== undefined) options.caValidityDays = caDays;
  return { command: 'provision', options };
}

export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CommandIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/**
 * Runs `fedsynth provision ...`. Returns the exit code: 0 on success, 2 for a usage mistake,
 * 1 when provisioning itself failed (existing kit, unreadable CA, ...). Never throws for
 * expected failures; messages go to `io.err`.
 */
export async function runProvisionCommand(args: string[], io: CommandIo = processIo): Promise<number> {
  let parsed: ParsedProvisionCommand;
  try {
    parsed = parseProvisionArgs(args);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`fedsynth provision: ${err.message}\nRun \`fedsynth provision --help\` for usage.\n`);
      return 2;
    }
    throw err;
  }
  try {
    if (parsed.command === 'help') {
      io.out(PROVISION_USAGE);
      return 0;
    }
    if (parsed.command === 'add-site') {
      const r = await addSite(parsed.options);
      io.out(`Issued site ${r.siteId} for federation ${r.federationId}: ${shown(r.siteDir)}\nNo other certificate was changed.\n`);
      return 0;
    }
    const r = await provisionFederation(parsed.options);
    const lines = [
      `Provisioned federation ${r.federationId} (CA SHA-256 ${r.caFingerprint256})`,
      `  CA:          ${shown(r.caDir)}  (keep ca.key offline; needed only for add-site)`,
      `  coordinator: ${shown(r.coordinatorDir)}`,
      ...Object.entries(r.siteDirs).map(([id, dir]) => `  site ${id}: ${shown(dir)}`),
    ];
    io.out(lines.join('\n') + '\n');
    return 0;
  } catch (err) {
    if (err instanceof ProvisionError) {
      io.err(`fedsynth provision: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

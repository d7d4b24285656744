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
import { command, parseArgs, processIo, runCommand, type CommandIo } from './args.ts';

const LAYOUT = `Creates a federation CA and startup kits:
  DIR/ca/{ca.pem,ca.key}                      keep ca.key offline; it only serves add-site
  DIR/coordinator/{ca.pem,cert.pem,key.pem}   for the coordinator
  DIR/sites/<id>/{ca.pem,cert.pem,key.pem}    one per site, hand each to its hospital

Subcommands: provision add-site NAME --out DIR (\`fedsynth provision add-site --help\`).`;

export const PROVISION = command({
  command: 'fedsynth provision',
  summary: 'Creates a new federation: its CA, the coordinator certificate and one client certificate per site.',
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'output directory' },
    federation: { type: 'string', value: 'ID', required: true, help: 'federation id' },
    sites: { type: 'list', value: 'a,b,c', required: true, help: "site ids: a-z, 0-9, '-', up to 63 characters" },
    hosts: {
      type: 'list',
      value: 'h1,h2',
      help: `names/IPs the coordinator is reached at (default ${DEFAULT_COORDINATOR_HOSTS.join(',')})`,
    },
    days: {
      type: 'int',
      min: 1,
      max: 36_500,
      default: DEFAULT_VALIDITY_DAYS,
      help: 'validity of coordinator and site certificates in days',
    },
    'ca-days': { type: 'int', min: 1, max: 36_500, help: 'validity of the CA in days (default max(--days, 3650))' },
  },
  notes: LAYOUT,
});

export const ADD_SITE = command({
  command: 'fedsynth provision add-site',
  summary: 'Issues a startup kit for one more site of an existing federation; no other certificate changes.',
  positionals: { name: 'NAME', min: 1, max: 1, help: 'the new site id' },
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'the directory given to `fedsynth provision --out`' },
    days: { type: 'int', min: 1, max: 36_500, help: `validity of the site certificate in days (default ${DEFAULT_VALIDITY_DAYS})` },
  },
});

export type ParsedProvisionCommand = { command: 'provision'; options: ProvisionOptions } | { command: 'add-site'; options: AddSiteOptions };

/** Parses the arguments after `provision`. Throws UsageError, or HelpRequest for --help. */
export function parseProvisionArgs(args: string[]): ParsedProvisionCommand {
  if (args[0] === 'help') return parseProvisionArgs(['--help']);
  if (args[0] === 'add-site') {
    const { flags, positional } = parseArgs(ADD_SITE, args.slice(1));
    const options: AddSiteOptions = { outDir: flags.out, siteId: positional[0] };
    if (flags.days !== undefined) options.validityDays = flags.days;
    return { command: 'add-site', options };
  }
  const { flags } = parseArgs(PROVISION, args);
  const options: ProvisionOptions = {
    outDir: flags.out,
    federationId: flags.federation,
    sites: flags.sites,
    validityDays: flags.days,
  };
  if (flags.hosts !== undefined) options.coordinatorHosts = flags.hosts;
  if (flags['ca-days'] !== undefined) options.caValidityDays = flags['ca-days'];
  return { command: 'provision', options };
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/**
 * Runs `fedsynth provision ...`. Returns the exit code: 0 on success, 2 for a usage mistake,
 * 1 when provisioning itself failed (existing kit, unreadable CA, ...). Never throws for
 * expected failures; messages go to `io.err`.
 */
export function runProvisionCommand(args: string[], io: CommandIo = processIo): Promise<number> {
  return runCommand(PROVISION.command, io, async () => {
    const parsed = parseProvisionArgs(args);
    try {
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
  });
}

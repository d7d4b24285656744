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
import { command, parseArgs, processIo, runCommand, UsageError, type CommandIo } from './args.ts';
import { readFileSync } from 'node:fs';
import {
  currentRoster,
  initRoster,
  REVOCATION_REASONS,
  revokeCertificates,
  rotateSite,
  siteCertificates,
  type RevocationReason,
} from '../pki/rotate.ts';
import type { RosterChange } from '../pki/roster.ts';
import { rotateCoordinator, type RotateCoordinatorOptions, type RotateCoordinatorResult } from '../pki/rotate-coordinator.ts';

const LAYOUT = `Creates a federation CA, startup kits and the signed federation roster:
  DIR/ca/{ca.pem,ca.key}                      keep ca.key offline; it only serves add-site, rotate-site, revoke
  DIR/coordinator/{ca.pem,cert.pem,key.pem}   for the coordinator
  DIR/sites/<id>/{ca.pem,cert.pem,key.pem,roster.json}
                                              one per site, hand each to its hospital
  DIR/roster.json                             the roster (version 1): each site id with its key, signed by the CA;
                                              a site's certificate serves in a committee only while the roster lists it

Subcommands (each has --help):
  provision add-site NAME --out DIR      a kit for one more site; the roster's next version lists it
  provision rotate-site NAME --out DIR   a new key and certificate for the same site id (ledger and spend kept); next roster version
  provision rotate-coordinator --out DIR a new key and server certificate for the coordinator (--hosts to change its names)
  provision revoke --out DIR --site NAME a certificate onto DIR/revoked.crl.pem; a revoked site leaves the roster
  provision roster --out DIR             shows the roster (--init: version 1 for a federation provisioned before rosters)

After add-site, rotate-site or a revoke that changed the roster, hand DIR/roster.json to every site
(its kit folder): sites refuse committee members their roster does not list, and never go back to an
older version.`;

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

export const ROTATE_SITE = command({
  command: 'fedsynth provision rotate-site',
  summary:
    'Issues a new key and certificate for an existing site id. The coordinator knows the site by its id, so its\n' +
    'registrations and spend carry over; the agent keeps its state folder. The old certificate moves to\n' +
    'DIR/sites/NAME/previous/ (the agent verifies its older audit entries with it). Copy the whole kit folder to the site.',
  positionals: { name: 'NAME', min: 1, max: 1, help: 'the site id' },
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'the directory given to `fedsynth provision --out`' },
    days: { type: 'int', min: 1, max: 36_500, help: `validity of the new certificate in days (default ${DEFAULT_VALIDITY_DAYS})` },
    'revoke-old': { type: 'boolean', help: 'also put the old certificate on the revocation list (reason superseded)' },
  },
});

export const ROTATE_COORDINATOR = command({
  command: 'fedsynth provision rotate-coordinator',
  summary:
    'Issues a new key and server certificate for the coordinator from the federation CA (an expiring certificate,\n' +
    'a leaked key, new host names). Sites accept it with no change: they check the CA and the host name they dial;\n' +
    'a site whose policy pins the coordinator (coordinatorFingerprint) must add the new fingerprint, printed here.\n' +
    'The old certificate and key move to DIR/coordinator/previous/ (audit verify --certs DIR reads the certificate\n' +
    'for the audit entries the coordinator signed before). The kit folder is replaced whole. Restart the coordinator.',
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'the directory given to `fedsynth provision --out`' },
    hosts: {
      type: 'list',
      value: 'h1,h2',
      help: 'names/IPs the coordinator is reached at (default: those of the current certificate)',
    },
    days: { type: 'int', min: 1, max: 36_500, help: `validity of the new certificate in days (default ${DEFAULT_VALIDITY_DAYS})` },
    'revoke-old': {
      type: 'boolean',
      help: 'also put the old certificate on DIR/revoked.crl.pem (agents given the list refuse it at the handshake)',
    },
    reason: {
      type: 'enum',
      values: REVOCATION_REASONS,
      help: 'with --revoke-old: the CRL reason code (default superseded; keyCompromise for a leaked key)',
    },
  },
});

export const REVOKE = command({
  command: 'fedsynth provision revoke',
  summary:
    "Adds certificates to the federation's revocation list DIR/revoked.crl.pem (an X.509 CRL signed by the CA).\n" +
    'Give the file to the coordinator and every agent (revocationList: in their configs); they re-read it when it changes.',
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'the directory given to `fedsynth provision --out`' },
    site: { type: 'string', value: 'NAME', help: "revoke this site's current certificate" },
    previous: { type: 'boolean', help: "with --site: revoke the site's previous certificates (after rotate-site) instead" },
    cert: { type: 'path', value: 'FILE.pem', help: 'revoke this certificate file' },
    reason: {
      type: 'enum',
      values: REVOCATION_REASONS,
      default: 'unspecified',
      help: 'the CRL reason code',
    },
  },
});

export const ROSTER = command({
  command: 'fedsynth provision roster',
  summary:
    'Shows the federation roster DIR/roster.json (its signature checked against the CA): version, issue time, and each\n' +
    "site id with the SHA-256 of its certificate's public key. With --init, writes version 1 from the site kits in\n" +
    'DIR/sites/ (sites whose current certificate is revoked are left out), for a federation provisioned before rosters.',
  flags: {
    out: { type: 'path', value: 'DIR', required: true, help: 'the directory given to `fedsynth provision --out`' },
    init: { type: 'boolean', help: 'write version 1 from the site kits; refused when a roster exists' },
  },
});

export type ParsedProvisionCommand =
  | { command: 'provision'; options: ProvisionOptions }
  | { command: 'add-site'; options: AddSiteOptions }
  | { command: 'rotate-site'; options: { outDir: string; siteId: string; validityDays?: number; revokeOld: boolean } }
  | { command: 'rotate-coordinator'; options: RotateCoordinatorOptions }
  | { command: 'revoke'; options: { outDir: string; site?: string; previous: boolean; cert?: string; reason: RevocationReason } }
  | { command: 'roster'; options: { outDir: string; init: boolean } };

/** Parses the arguments after `provision`. Throws UsageError, or HelpRequest for --help. */
export function parseProvisionArgs(args: string[]): ParsedProvisionCommand {
  if (args[0] === 'help') return parseProvisionArgs(['--help']);
  if (args[0] === 'add-site') {
    const { flags, positional } = parseArgs(ADD_SITE, args.slice(1));
    const options: AddSiteOptions = { outDir: flags.out, siteId: positional[0] };
    if (flags.days !== undefined) options.validityDays = flags.days;
    return { command: 'add-site', options };
  }
  if (args[0] === 'rotate-site') {
    const { flags, positional } = parseArgs(ROTATE_SITE, args.slice(1));
    return {
      command: 'rotate-site',
      options: {
        outDir: flags.out,
        siteId: positional[0],
        revokeOld: flags['revoke-old'],
        ...(flags.days !== undefined ? { validityDays: flags.days } : {}),
      },
    };
  }
  if (args[0] === 'rotate-coordinator') {
    const { flags } = parseArgs(ROTATE_COORDINATOR, args.slice(1));
    if (flags.reason !== undefined && !flags['revoke-old'])
      throw new UsageError('--reason goes with --revoke-old', ROTATE_COORDINATOR.command);
    return {
      command: 'rotate-coordinator',
      options: {
        outDir: flags.out,
        revokeOld: flags['revoke-old'],
        ...(flags.hosts !== undefined ? { hosts: flags.hosts } : {}),
        ...(flags.days !== undefined ? { validityDays: flags.days } : {}),
        ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
      },
    };
  }
  if (args[0] === 'roster') {
    const { flags } = parseArgs(ROSTER, args.slice(1));
    return { command: 'roster', options: { outDir: flags.out, init: flags.init } };
  }
  if (args[0] === 'revoke') {
    const { flags } = parseArgs(REVOKE, args.slice(1));
    if ((flags.site === undefined) === (flags.cert === undefined))
      throw new UsageError('needs exactly one of --site NAME or --cert FILE.pem', REVOKE.command);
    if (flags.previous && flags.site === undefined) throw new UsageError('--previous goes with --site NAME', REVOKE.command);
    return {
      command: 'revoke',
      options: {
        outDir: flags.out,
        previous: flags.previous,
        reason: flags.reason,
        ...(flags.site !== undefined ? { site: flags.site } : {}),
        ...(flags.cert !== undefined ? { cert: flags.cert } : {}),
      },
    };
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

/** What the operator does with a new roster version. */
function rosterLines(r: RosterChange): string {
  return (
    `Federation roster version ${r.version}: ${r.sites.map((x) => x.siteId).join(', ') || '(no sites)'}\n` +
    `Written to ${shown(r.file)} and ${r.files.length - 1} site kit(s); hand roster.json to every site (its kit folder): ` +
    `a site uses a committee member only while the roster it holds lists that member's key.\n`
  );
}

/** What the operator does after rotate-coordinator: restart, hand out the CRL, and re-pin where sites pin. */
function rotatedCoordinatorLines(r: RotateCoordinatorResult): string {
  const fp = (f: string) => f.replace(/:/g, '').toLowerCase();
  return (
    `Rotated the coordinator: new certificate serial ${r.newSerial} for ${r.hosts.join(', ')}, valid until ${r.notAfter.toISOString()}, in ${shown(r.coordinatorDir)}\n` +
    `The old certificate (serial ${r.oldSerial}) is kept as ${shown(r.previousCertPath)}` +
    `${r.previousKeyPath ? `, its key as ${shown(r.previousKeyPath)} (delete it once the new certificate is in service)` : ''}` +
    `${r.revokedIn ? `; it is now revoked in ${shown(r.revokedIn)}: give that file to the coordinator and every agent` : ''}.\n` +
    `Restart the coordinator with this kit. Sites need no new file: they check the CA and the host name.\n` +
    `New SHA-256 fingerprint ${fp(r.newFingerprint256)} (was ${fp(r.oldFingerprint256)}): a site whose policy pins the\n` +
    `coordinator (coordinatorFingerprint) must list it, or it refuses every task of the rotated coordinator; across the switch:\n` +
    `  coordinatorFingerprint: ["${fp(r.oldFingerprint256)}", "${fp(r.newFingerprint256)}"]\n`
  );
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
      if (parsed.command === 'rotate-site') {
        const r = await rotateSite(parsed.options);
        io.out(
          `Rotated site ${r.siteId}: new certificate serial ${r.newSerial} in ${shown(r.siteDir)}\n` +
            `The old certificate (serial ${r.oldSerial}) is kept as ${shown(r.previousCertPath)}${r.revoked ? ' and is now revoked' : ''}.\n` +
            `Copy the whole kit folder (with previous/) to the site and restart its agent; its state folder and ledger stay as they are.\n` +
            rosterLines(r.roster),
        );
        return 0;
      }
      if (parsed.command === 'rotate-coordinator') {
        io.out(rotatedCoordinatorLines(await rotateCoordinator(parsed.options)));
        return 0;
      }
      if (parsed.command === 'revoke') {
        const o = parsed.options;
        let pems: string[];
        if (o.cert !== undefined) {
          try {
            pems = [readFileSync(o.cert, 'utf8')];
          } catch (err) {
            throw new ProvisionError(`cannot read ${o.cert}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
        } else pems = siteCertificates(o.outDir, o.site!, o.previous ? 'previous' : 'current');
        const r = await revokeCertificates({ outDir: o.outDir, certPems: pems, reason: o.reason });
        const lines = r.added.length
          ? r.added.map((a) => `Revoked ${a.subject} (serial ${a.serial})`)
          : ['Nothing new to revoke: every certificate given is already on the list'];
        io.out(
          `${lines.join('\n')}\n${shown(r.file)} now lists ${r.total} certificate(s) as cRLNumber ${r.crlNumber}; give it to the coordinator and every agent (they refuse any lower number from now on).\n`,
        );
        if (r.roster) io.out(`${r.removedFromRoster.join(', ')} left the roster.\n${rosterLines(r.roster)}`);
        return 0;
      }
      if (parsed.command === 'roster') {
        if (parsed.options.init) {
          io.out(rosterLines(await initRoster({ outDir: parsed.options.outDir })));
          return 0;
        }
        const r = await currentRoster(parsed.options.outDir);
        io.out(
          [
            `Federation ${r.federationId}, roster version ${r.version}, issued ${r.issuedAt.toISOString()}`,
            ...r.sites.map((x) => `  ${x.siteId}  public key SHA-256 ${x.publicKeySha256}`),
          ].join('\n') + '\n',
        );
        return 0;
      }
      if (parsed.command === 'add-site') {
        const r = await addSite(parsed.options);
        io.out(
          `Issued site ${r.siteId} for federation ${r.federationId}: ${shown(r.siteDir)}\nNo other certificate was changed.\n${rosterLines(r.roster)}`,
        );
        return 0;
      }
      const r = await provisionFederation(parsed.options);
      const lines = [
        `Provisioned federation ${r.federationId} (CA SHA-256 ${r.caFingerprint256})`,
        `  CA:          ${shown(r.caDir)}  (keep ca.key offline; needed only for add-site, rotate-site, revoke)`,
        `  coordinator: ${shown(r.coordinatorDir)}`,
        ...Object.entries(r.siteDirs).map(([id, dir]) => `  site ${id}: ${shown(dir)}`),
        `  roster:      ${shown(r.rosterFile)}  (version 1, also in every site kit)`,
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

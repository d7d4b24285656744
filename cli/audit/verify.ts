// `fedsynth audit export` and `fedsynth audit verify`.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { command, parseArgs, UsageError } from '../args.ts';
import { parseCoordinatorConfig } from '../coordinator-config.ts';
import { parseChainLines } from '../../privacy/audit-log/chain.ts';
import { COORDINATOR, reconcileAuditLogs, type AuditLogInput, type ReconcileResult } from '../../privacy/audit-log/reconcile.ts';
import { entriesSignedAfterRevocation, type RevokedSigner } from '../../privacy/audit-log/revoked-signers.ts';
import { crlNumberText, readRevocationList, RevocationListError, type RevocationList } from '../../proto/revocation.ts';

const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}
export const stdIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Sidecar with the certificate of the party that wrote an exported log. */
export const certSidecar = (log: string) => `${log}.cert.pem`;

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function listPemFiles(dir: string, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...listPemFiles(p, depth + 1));
    else if (name.endsWith('.pem') && !name.includes('key')) out.push(p);
  }
  return out;
}

/** The party a certificate proves: a site certificate (clientAuth) is its CN, the server certificate is the coordinator. */
export function certificateParty(cert: X509Certificate): string | null {
  if (cert.ca) return null;
  if ((cert.keyUsage ?? []).includes(OID_CLIENT_AUTH)) return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? null;
  return COORDINATOR;
}

/**
 * Party → certificate PEMs, from PEM files (startup kits: `--certs DIR`, sidecars of exported
 * logs, a site's <state>/certs), keeping only certificates issued by the CA. A party may have
 * several after a certificate rotation (fedsynth provision rotate-site): its older entries
 * verify under its older certificate. Rejections are returned as notes.
 */
export function loadPartyCertificates(caPem: string, sources: string[]): { keys: Map<string, string[]>; notes: string[] } {
  const ca = new X509Certificate(caPem);
  const keys = new Map<string, string[]>();
  const notes: string[] = [];
  for (const file of sources) {
    for (const pem of pemBlocks(readFileSync(file, 'utf8'))) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(pem);
      } catch {
        notes.push(`${file}: unreadable certificate ignored`);
        continue;
      }
      const party = certificateParty(cert);
      if (party === null) continue;
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
        notes.push(`${file}: certificate of ${party} is not issued by the given CA; ignored`);
        continue;
      }
      const known = keys.get(party) ?? [];
      if (known.some((k) => new X509Certificate(k).fingerprint256 === cert.fingerprint256)) continue;
      if (known.length)
        notes.push(`${file}: another certificate of ${party} (a rotation); entries verify under any of its ${known.length + 1}`);
      keys.set(party, [...known, pem]);
    }
  }
  return { keys, notes };
}

export interface VerifyInputs {
  logs: string[];
  caPem: string;
  /** Certificate PEM files or directories of them (startup kits). */
  certFiles: string[];
  delta: number;
  /** The federation's CRL, CA-verified: entries signed with a certificate after its revocation fail. */
  revocationList?: RevocationList;
}

/** The given certificates the list revokes, each with its party and revocation time. */
export function revokedSigners(keys: ReadonlyMap<string, readonly string[]>, list: RevocationList): RevokedSigner[] {
  const out: RevokedSigner[] = [];
  for (const [party, pems] of keys)
    for (const pem of pems) {
      const entry = list.lookupPem(pem);
      if (entry)
        out.push({ party, key: pem, serial: entry.serial, revokedAt: entry.revokedAt, ...(entry.reason ? { reason: entry.reason } : {}) });
    }
  return out;
}

export function verifyFiles(inp: VerifyInputs): { result: ReconcileResult; notes: string[] } {
  const sidecars = inp.logs.map(certSidecar).filter((f) => existsSync(f));
  const files = inp.certFiles.flatMap((p) => (statSync(p).isDirectory() ? listPemFiles(p) : [p]));
  const { keys, notes } = loadPartyCertificates(inp.caPem, [...files, ...sidecars]);
  const revoked = inp.revocationList ? revokedSigners(keys, inp.revocationList) : [];
  if (inp.revocationList) {
    notes.push(
      `${inp.revocationList.source} (${crlNumberText(inp.revocationList)}) revokes ${revoked.length} of the given certificates${revoked.length ? `: ${revoked.map((r) => `${r.party} serial ${r.serial} on ${r.revokedAt.toISOString()}`).join(', ')}` : ''}`,
    );
  }
  const logs: AuditLogInput[] = inp.logs.map((f) => ({ name: f, entries: parseChainLines(readFileSync(f, 'utf8')) }));
  const result = reconcileAuditLogs(logs, keys, { delta: inp.delta });
  for (const log of logs)
    for (const { log: name, kind, seq, message } of entriesSignedAfterRevocation(log.name, log.entries, revoked))
      result.findings.push({ log: name, kind, message, ...(seq !== undefined ? { seq } : {}) });
  result.ok = result.findings.length === 0;
  return { result, notes };
}

/** The flags verify and report share: which logs, the CA, extra certificates, δ, the revocation list. */
export const LOG_FLAGS = {
  log: {
    type: 'list',
    value: 'FILE[,FILE...]',
    help: "audit logs: the coordinator export and sites' <state>/audit.jsonl (also as arguments)",
  },
  ca: { type: 'path', value: 'ca.pem', required: true, help: "the federation CA that issued every party's certificate" },
  certs: { type: 'list', value: 'DIR|FILE[,...]', help: 'more party certificates (PEM files or folders of them)' },
  delta: {
    type: 'number',
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
    default: 1e-9,
    help: 'δ at which spend is reported as ε',
  },
  'revocation-list': {
    type: 'path',
    value: 'FILE',
    help: "the federation's revocation list (revoked.crl.pem, CA-signed): an entry signed with a listed certificate after its revocation fails. Without it, revoked certificates are not checked",
  },
} as const;

export const VERIFY = command({
  command: 'fedsynth audit verify',
  summary:
    "Verifies the hash chain and signatures of every log, recomputes each party's spend, and reconciles\nthe sites' logs with the coordinator's both ways. Exit 0 only when nothing is found (--strict: and no warning).",
  positionals: { name: 'LOG...', min: 0, max: 1000, help: 'more audit logs' },
  flags: {
    ...LOG_FLAGS,
    json: { type: 'boolean', help: 'print the result as JSON' },
    strict: { type: 'boolean', help: 'warnings (a site log not given) fail too' },
  },
});

export const EXPORT = command({
  command: 'fedsynth audit export',
  summary: "Writes the federation's signed audit log (JSON lines, exactly as signed) and the coordinator certificate beside it.",
  flags: {
    config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config (finds its store)' },
    out: { type: 'path', value: 'FILE.jsonl', required: true, help: 'the log to write (the certificate goes to FILE.jsonl.cert.pem)' },
  },
});

/** Logs named by --log and as arguments; at least one, each existing. */
export function logFiles(log: string[] | undefined, positional: string[], command: string): string[] {
  const logs = [...(log ?? []), ...positional];
  if (logs.length === 0)
    throw new UsageError("needs --log FILE[,FILE...] (the coordinator export and sites' <state>/audit.jsonl)", command);
  for (const l of logs) if (!existsSync(l)) throw new UsageError(`log ${l} does not exist`, command);
  return logs;
}

export function certFilesFrom(certs: string[] | undefined): string[] {
  const files: string[] = [];
  for (const c of certs ?? []) {
    const p = resolve(c);
    if (!existsSync(p)) throw new UsageError(`--certs ${c} does not exist`);
    files.push(p);
  }
  return files;
}

/** The list --revocation-list names, verified against the CA; any problem is a usage error. */
export async function revocationListFlag(file: string, caPem: string, command: string): Promise<RevocationList> {
  try {
    return await readRevocationList(file, caPem);
  } catch (err) {
    if (err instanceof RevocationListError) throw new UsageError(`--revocation-list: ${err.message}`, command);
    throw err;
  }
}

export async function runAuditVerify(args: string[], io: Io = stdIo): Promise<number> {
  const { flags, positional } = parseArgs(VERIFY, args);
  const logs = logFiles(flags.log, positional, VERIFY.command);
  const caPem = readFileSync(flags.ca, 'utf8');
  const revocationList =
    flags['revocation-list'] === undefined ? undefined : await revocationListFlag(flags['revocation-list'], caPem, VERIFY.command);
  const { result, notes } = verifyFiles({
    logs,
    caPem,
    certFiles: certFilesFrom(flags.certs),
    delta: flags.delta,
    ...(revocationList ? { revocationList } : {}),
  });
  if (flags.json) {
    io.out(`${JSON.stringify({ ...result, notes }, null, 2)}\n`);
  } else {
    for (const n of notes) io.err(`note: ${n}\n`);
    for (const l of result.logs)
      io.out(`log ${l.name}: party ${l.party ?? '?'}, ${l.entries} entries, ${l.chainFindings} chain finding(s)\n`);
    for (const p of Object.values(result.parties)) {
      const own = p.ownLog
        ? `; own log ρ ${p.ownLog.rho.toPrecision(6)} (ε ${p.ownLog.epsilon.toFixed(4)}), ${p.ownLog.charges} charges, ${p.ownLog.refusals} refusals`
        : '';
      io.out(
        `spend ${p.party}: ρ ${p.rho.toPrecision(6)} → ε ${p.epsilon.toFixed(4)} at δ ${result.delta} over ${p.charges} charges (recomputed)${own}\n`,
      );
    }
    for (const f of result.findings) io.out(`FINDING [${f.kind}] ${f.log}${f.seq !== undefined ? ` seq ${f.seq}` : ''}: ${f.message}\n`);
    for (const w of result.warnings) io.err(`WARNING [${w.kind}] ${w.message}\n`);
    const strictFail = flags.strict === true && result.warnings.length > 0;
    io.out(
      !result.ok
        ? `FAILED: ${result.findings.length} finding(s)\n`
        : strictFail
          ? `FAILED (--strict): ${result.warnings.length} warning(s)\n`
          : `OK: ${result.logs.length} log(s) verified, no findings${result.warnings.length ? `, ${result.warnings.length} warning(s)` : ''}\n`,
    );
  }
  // --strict: what could not be reconciled (e.g. a missing site log) fails like a finding.
  return result.ok && !(flags.strict === true && result.warnings.length > 0) ? 0 : 1;
}

export async function runAuditExport(args: string[], io: Io = stdIo): Promise<number> {
  const { flags } = parseArgs(EXPORT, args);
  const cfg = parseCoordinatorConfig(flags.config);
  const { openStore } = await import('../../coordinator/store/index.ts');
  const store = await openStore(
    cfg.storage.kind === 'pglite' ? { pglite: cfg.storage.dataDir } : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
  );
  try {
    const text = await store.exportAudit(cfg.federationId);
    writeFileSync(flags.out, text);
    // The coordinator's certificate travels with its log; the verifier still checks it against the CA.
    writeFileSync(certSidecar(flags.out), cfg.kit.certPem);
    const n = text ? text.trim().split('\n').length : 0;
    io.out(`wrote ${n} audit entries of federation ${cfg.federationId} to ${flags.out} (certificate: ${certSidecar(flags.out)})\n`);
    return 0;
  } finally {
    await store.close();
  }
}

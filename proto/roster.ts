// The federation roster: which site ids may hold a decryption share or contribute, each with the
// SHA-256 of the one public key it may do so with. `fedsynth provision` writes it (pki/roster.ts)
// and signs it with the federation CA key; every change (add-site, rotate-site, revoke) is a new
// version. Sites verify it against the CA they already hold and refuse an older version than the
// one they have accepted (site-agent/roster.ts), so a CA-issued certificate that the roster does
// not list, or a second certificate for a listed id with another key, is not a committee member.
//
// The file is JSON whose `payload` is the roster itself as a JSON *string*: the signature covers
// those exact bytes, so no canonical re-encoding is needed and a re-written number cannot verify.
// pki/ writes the same layout (it may not import proto/); tests/unit/federation-roster.test.ts
// round-trips one through the other.
import { createHash, verify, X509Certificate } from 'node:crypto';

export const ROSTER_FILE = 'roster.json';
export const ROSTER_FORMAT = 'fedsynth-roster/1';
/** The coordinator's certificate CN: never a site of any roster. */
export const ROSTER_COORDINATOR_ID = 'fedsynth-coordinator';
const SITE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export class RosterError extends Error {
  override name = 'RosterError';
}

export interface RosterSite {
  siteId: string;
  /** Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of the site's certificate. */
  publicKeySha256: string;
}

/** A roster whose signature was verified against the federation CA. */
export interface FederationRoster {
  federationId: string;
  /** Increases by one with every change; a site never goes back to a lower one. */
  version: number;
  issuedAt: Date;
  sites: readonly RosterSite[];
  /** The signed payload bytes as text: two rosters of one version are the same roster iff these are equal. */
  payload: string;
  /** The whole file as read, so a site can keep exactly what it accepted. */
  fileText: string;
}

/** Hex SHA-256 of a certificate's public key (SPKI DER): what the roster lists per site. */
export function publicKeySha256(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

function field<T>(obj: Record<string, unknown>, key: string, ok: (v: unknown) => v is T, expected: string, where: string): T {
  const v = obj[key];
  if (!ok(v)) throw new RosterError(`${where}: "${key}" must be ${expected}, found ${JSON.stringify(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a roster file and verifies its signature against the federation CA; throws RosterError
 * naming the problem. The federation id must be the CA's (the O of its subject).
 */
export function parseRoster(fileText: string, caPem: string | Buffer, where: string): FederationRoster {
  let outer: unknown;
  try {
    outer = JSON.parse(fileText);
  } catch (err) {
    throw new RosterError(`${where} is not JSON (${(err as Error).message}); a roster is written by fedsynth provision`);
  }
  if (!isRecord(outer)) throw new RosterError(`${where} is not a roster object`);
  const format = field(outer, 'format', isString, 'a string', where);
  if (format !== ROSTER_FORMAT)
    throw new RosterError(`${where}: unknown roster format ${JSON.stringify(format)} (this agent reads ${ROSTER_FORMAT})`);
  const payload = field(outer, 'payload', isString, 'the signed roster as a JSON string', where);
  const signatureB64 = field(outer, 'signature', isString, 'a base64 signature', where);

  const ca = new X509Certificate(caPem);
  const signature = Buffer.from(signatureB64, 'base64');
  // A signature of the wrong length verifies false, it does not throw.
  const signed = verify('sha256', Buffer.from(payload, 'utf8'), { key: ca.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  if (!signed) throw new RosterError(`${where} is not signed by this federation's CA (${ca.subject.replace(/\n/g, ', ')}); refusing it`);

  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch (err) {
    throw new RosterError(`${where}: the signed payload is not JSON (${(err as Error).message})`);
  }
  if (!isRecord(body)) throw new RosterError(`${where}: the signed payload is not an object`);
  const innerFormat = field(body, 'format', isString, 'a string', `${where} payload`);
  if (innerFormat !== ROSTER_FORMAT)
    throw new RosterError(`${where}: the signed payload is of format ${JSON.stringify(innerFormat)}, not ${ROSTER_FORMAT}`);
  const federationId = field(body, 'federationId', isString, 'a string', `${where} payload`);
  const caFederation = /(?:^|\n)O=([^\n]*)/.exec(ca.subject)?.[1];
  if (federationId !== caFederation)
    throw new RosterError(
      `${where} is the roster of federation ${JSON.stringify(federationId)}, but the CA is of ${JSON.stringify(caFederation)}`,
    );
  const version = field(
    body,
    'version',
    (v): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1,
    'a whole number ≥ 1',
    `${where} payload`,
  );
  const issuedAtText = field(body, 'issuedAt', isString, 'an ISO 8601 time', `${where} payload`);
  const issuedAt = new Date(issuedAtText);
  if (Number.isNaN(issuedAt.getTime())) throw new RosterError(`${where}: issuedAt ${JSON.stringify(issuedAtText)} is not a time`);
  const rawSites = field(body, 'sites', Array.isArray, 'a list', `${where} payload`) as unknown[];
  const sites: RosterSite[] = [];
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const [i, s] of rawSites.entries()) {
    const at = `${where} site ${i + 1}`;
    if (!isRecord(s)) throw new RosterError(`${at} is not an object`);
    const siteId = field(s, 'siteId', (v): v is string => isString(v) && SITE_ID.test(v), 'a site id', at);
    if (siteId === ROSTER_COORDINATOR_ID)
      throw new RosterError(`${at}: the coordinator (${ROSTER_COORDINATOR_ID}) is never a site of the roster`);
    const key = field(s, 'publicKeySha256', (v): v is string => isString(v) && SHA256_HEX.test(v), '64 lower-case hex digits', at);
    if (ids.has(siteId)) throw new RosterError(`${at}: site ${siteId} is listed twice`);
    if (keys.has(key)) throw new RosterError(`${at}: site ${siteId} has the same public key as another site`);
    ids.add(siteId);
    keys.add(key);
    sites.push({ siteId, publicKeySha256: key });
  }
  return { federationId, version, issuedAt, sites, payload, fileText };
}

export type RosterProblem = 'not-in-roster' | 'key-not-in-roster';

/** Why `certPem` may not act as site `siteId` under this roster, or null when it may. */
export function rosterProblem(roster: FederationRoster, siteId: string, certPem: string): RosterProblem | null {
  const entry = roster.sites.find((s) => s.siteId === siteId);
  if (!entry) return 'not-in-roster';
  let key: string;
  try {
    key = publicKeySha256(certPem);
  } catch {
    return 'key-not-in-roster';
  }
  return key === entry.publicKeySha256 ? null : 'key-not-in-roster';
}

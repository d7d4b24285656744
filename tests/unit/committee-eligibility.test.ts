// Committee eligibility is decided by the site: a committee key is accepted only from a
// site-profile certificate (clientAuth only, site URI SAN) of the federation CA, valid now, naming
// that member, and listed with that certificate's key in the site's signed federation roster. The
// coordinator's own server certificate, and a further certificate the CA issued (for an id the
// roster does not list, or for a listed id with another key), are refused before the site's data
// is read or its budget charged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { bfvParams } from '../../coordinator/engine.ts';
import { kitsOutsideRoster, provisionedKits } from '../support/kits.ts';
import type { FederationRoster } from '../../proto/roster.ts';
import { committeeCertificateProblem } from '../../proto/tls-kit.ts';
import type { CommitteeMemberSpec, MeasureSpec } from '../../proto/task-spec.ts';
import { signCommitteeKey } from '../../privacy/crypto/secure-aggregation.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { measure, siteRho, TaskRefusal, verifyCommittee, type TaskContext } from '../../site-agent/tasks.ts';
import type { Bfv } from '../../privacy/crypto/bfv.ts';

const FED = 'test-fed';
const SCHEMA_HASH = 'schema-hash';
let dir: string;
let kits: Record<string, { certPem: string; keyPem: string }>;
let caCert: X509Certificate;
let roster: FederationRoster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-committee-'));
  const p = await provisionedKits(dir, FED, ['hospital-a', 'hospital-b']);
  caCert = p.caCert;
  roster = p.roster;
  // What a CA holder can do without the roster: issue more site-profile certificates from the CA
  // key, for a new id and for an id the roster lists (with a key of its own).
  kits = { ...p.kits, ...(await kitsOutsideRoster(p.caDir)) };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A member entry as a party would publish it: its key signed by its own certificate's key. */
function member(kit: string, memberId: string, point: number): CommitteeMemberSpec {
  const publicKey = new Uint8Array([point, 1, 2, 3]);
  const signature = signCommitteeKey(kits[kit].keyPem, { federationId: FED, schemaHash: SCHEMA_HASH, memberId, point, publicKey });
  return {
    memberId,
    point,
    publicKey: Buffer.from(publicKey).toString('base64'),
    signature: Buffer.from(signature).toString('base64'),
    certificatePem: kits[kit].certPem,
  };
}

const BFV = bfvParams();

function spec(committee: CommitteeMemberSpec[]): MeasureSpec {
  const s: MeasureSpec = {
    kind: 'measure',
    marginals: [['sex']],
    sigmaSite2: { num: '400', den: '1' },
    quorum: 2,
    rho: 0,
    threshold: 2,
    committee,
    bfv: BFV,
    maxCellCount: 1000,
  };
  s.rho = siteRho(s, 2);
  return s;
}

const now = () => new Date();
const verifyCtx = () => ({ caCert, federationId: FED, schemaHash: SCHEMA_HASH, now, roster: () => roster });

describe('committee eligibility (site side)', () => {
  it('accepts a committee of site certificates', () => {
    const committee = verifyCommittee(verifyCtx(), spec([member('hospital-a', 'hospital-a', 1), member('hospital-b', 'hospital-b', 2)]));
    expect(committee.map((m) => m.memberId)).toEqual(['hospital-a', 'hospital-b']);
  });

  it('refuses the coordinator as a committee member, with a signed key and its real certificate', () => {
    const s = spec([member('hospital-a', 'hospital-a', 1), member('coordinator', 'fedsynth-coordinator', 2)]);
    expect(() => verifyCommittee(verifyCtx(), s)).toThrow(
      /^committee member fedsynth-coordinator has a certificate without the site profile .*only sites may hold decryption shares/,
    );
    expect(committeeCertificateProblem(kits.coordinator.certPem, caCert, 'fedsynth-coordinator', new Date(), roster)).toBe(
      'not-site-profile',
    );
  });

  it('refuses a site certificate presented for another member, outside its validity, or unreadable', () => {
    expect(() => verifyCommittee(verifyCtx(), spec([member('hospital-a', 'hospital-b', 1)]))).toThrow(/names another party/);
    const later = new Date(Date.now() + 3 * 86_400_000);
    expect(committeeCertificateProblem(kits['hospital-a'].certPem, caCert, 'hospital-a', later, roster)).toBe('outside-validity');
    expect(committeeCertificateProblem('not a pem', caCert, 'hospital-a', new Date(), roster)).toBe('unreadable');
  });

  it('refuses a CA-issued site certificate for an id the roster does not list', () => {
    // The certificate alone passes every certificate check: only the roster keeps it out.
    const s = spec([member('hospital-a', 'hospital-a', 1), member('extra-x', 'hospital-x', 2)]);
    expect(() => verifyCommittee(verifyCtx(), s)).toThrow(
      /^committee member hospital-x is not a site of the federation roster \(roster version 1\): refusing to encrypt to it/,
    );
    expect(committeeCertificateProblem(kits['extra-x'].certPem, caCert, 'hospital-x', new Date(), roster)).toBe('not-in-roster');
  });

  it('refuses a second CA-issued certificate for a listed id with another key', () => {
    const s = spec([member('hospital-a', 'hospital-a', 1), member('second-b', 'hospital-b', 2)]);
    expect(() => verifyCommittee(verifyCtx(), s)).toThrow(
      /^committee member hospital-b has a certificate whose key is not the one the federation roster lists for it \(roster version 1\)/,
    );
    expect(committeeCertificateProblem(kits['second-b'].certPem, caCert, 'hospital-b', new Date(), roster)).toBe('key-not-in-roster');
    expect(committeeCertificateProblem(kits['hospital-b'].certPem, caCert, 'hospital-b', new Date(), roster)).toBeNull();
  });

  it('a measure task naming the coordinator in its committee is refused before data is read or budget charged', () => {
    const domain = new Domain(['sex'], [2]);
    const data = new Dataset(domain, [Uint8Array.from([0, 1, 1, 0])], 4);
    let touched = false;
    const columns = data.columns;
    Object.defineProperty(data, 'columns', {
      get: () => {
        touched = true;
        return columns;
      },
    });
    const ledger = openLedger(join(dir, 'state-a'));
    const noised: string[] = [];
    const ctx: TaskContext = {
      siteId: 'hospital-a',
      federationId: FED,
      schemaHash: SCHEMA_HASH,
      taskId: 't1',
      roundId: 'r1',
      // Never reached: the refusal comes before any encryption.
      bfv: undefined as unknown as Bfv,
      ledger,
      policy: parsePolicy({ epsilon: 5, delta: 1e-6, minQuorum: 1, minThreshold: 1 }),
      data,
      attributeKinds: { sex: 'categorical' },
      caCert,
      certPem: kits['hospital-a'].certPem,
      keyPem: kits['hospital-a'].keyPem,
      stateDir: join(dir, 'state-a'),
      now,
      roster: () => roster,
      onNoisedVector: (id) => noised.push(id),
    };
    for (const [other, memberId] of [
      ['coordinator', 'fedsynth-coordinator'],
      ['extra-x', 'hospital-x'],
      ['second-b', 'hospital-b'],
    ]) {
      const s = spec([member('hospital-a', 'hospital-a', 1), member(other, memberId, 2)]);
      expect(() => measure(ctx, s)).toThrow(TaskRefusal);
    }
    expect(touched).toBe(false);
    expect(noised).toEqual([]);
    expect(ledger.state().charges).toBe(0);
    expect(ledger.state().totalRho).toBe(0);
    expect(ledger.cachedAnswer('t1')).toBeUndefined();
  });
});

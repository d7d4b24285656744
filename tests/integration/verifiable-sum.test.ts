// Verifiable sums: a committee member decrypts only a sum it formed itself from contributions
// each site signed for that round and that member, never a ciphertext the coordinator hands it.
// Sites and members run the production task handlers (site-agent/tasks.ts) with real BFV keys,
// real certificates from the federation PKI and real state folders; the test plays a malicious
// coordinator that assembles the decryption inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import type { FederationRoster } from '../../proto/roster.ts';
import { bfvParams } from '../../coordinator/engine.ts';
import { kitsOutsideRoster, provisionedKits } from '../support/kits.ts';
import type { CommitteeMemberSpec, DecryptSpec, MeasureSpec } from '../../proto/task-spec.ts';
import { ContributionCodec, DecryptionInputCodec, PartialDecryptionCodec } from '../../proto/wire.ts';
import type { Contribution__Output } from '../../proto/generated/fedsynth/v1/Contribution.ts';
import { Bfv } from '../../privacy/crypto/bfv.ts';
import { combine } from '../../privacy/crypto/secure-aggregation.ts';
import { encodeSigned } from '../../privacy/crypto/field.ts';
import { signContributionShare } from '../../privacy/crypto/verifiable-sum.ts';
import { Dataset, Domain } from '../../model/domain.ts';
import { openLedger, type Ledger } from '../../site-agent/ledger.ts';
import { parsePolicy } from '../../site-agent/policy.ts';
import { decrypt, keygen, measure, siteRho, TaskRefusal, type TaskContext } from '../../site-agent/tasks.ts';
import { CommitteeKeyCodec } from '../../proto/wire.ts';

const FED = 'vsum-fed';
const SCHEMA_HASH = 'schema-hash';
const SITES = ['hospital-a', 'hospital-b', 'hospital-c'];
const BFV = bfvParams();

let dir: string;
let bfv: Bfv;
let caCert: X509Certificate;
let roster: FederationRoster;
let kits: Record<string, { certPem: string; keyPem: string }>;
const ledgers = new Map<string, Ledger>();
let committee: CommitteeMemberSpec[];
const noised = new Map<string, BigInt64Array>();

function ctx(site: string, taskId: string, roundId: string, minQuorum = 2): TaskContext {
  const domain = new Domain(['sex'], [2]);
  const rows = site === 'hospital-a' ? [0, 1, 1] : site === 'hospital-b' ? [1, 1, 1, 0] : [0, 0];
  let ledger = ledgers.get(site);
  if (!ledger) {
    ledger = openLedger(join(dir, 'state', site));
    ledgers.set(site, ledger);
  }
  return {
    siteId: site,
    federationId: FED,
    schemaHash: SCHEMA_HASH,
    taskId,
    roundId,
    bfv,
    ledger,
    policy: parsePolicy({ epsilon: 5, delta: 1e-6, minQuorum }),
    data: new Dataset(domain, [Uint8Array.from(rows)], rows.length),
    attributeKinds: { sex: 'categorical' },
    caCert,
    roster: () => roster,
    certPem: kits[site].certPem,
    keyPem: kits[site].keyPem,
    stateDir: join(dir, 'state', site),
    now: () => new Date(),
    onNoisedVector: (id, v) => noised.set(`${site}/${id}`, v),
  };
}

function measureSpec(maxCellCount = 1000): MeasureSpec {
  const s: MeasureSpec = {
    kind: 'measure',
    marginals: [['sex']],
    sigmaSite2: { num: '400', den: '1' },
    quorum: 2,
    rho: 0,
    threshold: 2,
    committee,
    bfv: BFV,
    maxCellCount,
  };
  s.rho = siteRho(s, 2);
  return s;
}

/** Every site answers one measure round; returns the decoded contributions by site. */
function measureRound(roundId: string): Map<string, Contribution__Output> {
  const out = new Map<string, Contribution__Output>();
  for (const site of SITES) {
    const answer = measure(ctx(site, `${roundId}-${site}`, roundId), measureSpec());
    out.set(site, ContributionCodec.decode(answer.body));
  }
  return out;
}

/** What the coordinator sends member `memberId`: the chosen sites' shares addressed to it. */
function decryptionInput(
  memberId: string,
  contributions: Contribution__Output[],
): { spec: Omit<DecryptSpec, 'measureRoundId'>; payload: Uint8Array } {
  const point = committee.find((m) => m.memberId === memberId)!.point;
  const payload = DecryptionInputCodec.encode({
    member_id: memberId,
    point,
    length: 2,
    contributors: contributions.length,
    contributions: contributions.map((c) => {
      const mine = c.shares.find((s) => s.member_id === memberId)!;
      return {
        site_id: c.site_id,
        certificate_pem: c.certificate_pem,
        quorum: c.quorum,
        ciphertexts: mine.ciphertexts,
        signature: mine.signature,
      };
    }),
  });
  return { spec: { kind: 'decrypt', point, length: 2, contributors: contributions.length, bfv: BFV }, payload };
}

function runDecrypt(memberId: string, roundId: string, contributions: Contribution__Output[], minQuorum = 2) {
  const { spec, payload } = decryptionInput(memberId, contributions);
  const answer = decrypt(
    ctx(memberId, `dec-${roundId}-${memberId}`, `dec-${roundId}`, minQuorum),
    { ...spec, measureRoundId: roundId },
    payload,
  );
  return PartialDecryptionCodec.decode(answer.body);
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof TaskRefusal) return e.message;
    throw e;
  }
  return 'not refused';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedsynth-vsum-'));
  const p = await provisionedKits(dir, FED, SITES);
  caCert = p.caCert;
  roster = p.roster;
  // Site-profile certificates a CA holder issued outside provisioning: for an id the roster does
  // not list, and for a listed id with another key.
  kits = { ...p.kits, ...(await kitsOutsideRoster(p.caDir)) };
  bfv = await Bfv.create();
  committee = SITES.map((site, i) => {
    const key = CommitteeKeyCodec.decode(keygen(ctx(site, `keygen-${site}`, 'keygen'), { kind: 'keygen', point: i + 1, bfv: BFV }).body);
    return {
      memberId: site,
      point: i + 1,
      publicKey: Buffer.from(key.public_key).toString('base64'),
      signature: Buffer.from(key.signature).toString('base64'),
      certificatePem: key.certificate_pem,
    };
  });
}, 60_000);

afterAll(() => {
  for (const l of ledgers.values()) l.close();
  bfv?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('verifiable sums (member side)', () => {
  it('members re-sum the signed shares: the combined partials are exactly the sum of the sites’ noised vectors', () => {
    const contributions = measureRound('round-1');
    const all = [...contributions.values()];
    const partials = ['hospital-a', 'hospital-b'].map((m) => runDecrypt(m, 'round-1', all));
    const total = combine(
      partials.map((p) => ({ point: p.point, share: Uint32Array.from(p.share) })),
      2,
    );
    const expected = [0n, 0n];
    for (const site of SITES) {
      const v = noised.get(`${site}/round-1-${site}`)!;
      expected[0] += v[0];
      expected[1] += v[1];
    }
    expect([...total]).toEqual(expected);
    // A retried decryption of the same set is answered again, identically.
    expect(runDecrypt('hospital-a', 'round-1', all).share).toEqual(partials[0].share);
  });

  it('refuses to decrypt a single site’s ciphertext, even when its own policy would accept a quorum of 1', () => {
    const contributions = measureRound('round-2');
    const reason = refusal(() => runDecrypt('hospital-c', 'round-2', [contributions.get('hospital-b')!], 1));
    expect(reason).toMatch(/^refusing to decrypt: only 1 contribution\(s\), the sites' noise is sized for a quorum of 2/);
  });

  it('refuses a second, different set of the same round (their difference would be one site’s vector)', () => {
    const contributions = measureRound('round-3');
    const [a, b, c] = SITES.map((s) => contributions.get(s)!);
    runDecrypt('hospital-b', 'round-3', [a, b, c]);
    expect(refusal(() => runDecrypt('hospital-b', 'round-3', [a, b]))).toMatch(
      /already decrypted a different set of contributions for round round-3/,
    );
  });

  it('refuses a ciphertext the coordinator made itself, a share moved to another round, a duplicated site and a coordinator signature', () => {
    const r4 = measureRound('round-4');
    const [a, b] = [r4.get('hospital-a')!, r4.get('hospital-b')!];
    // The coordinator encrypts a vector of its choosing to the member, under site a's name.
    const memberKey = new Uint8Array(Buffer.from(committee[2].publicKey, 'base64'));
    const forged = bfv.encrypt(memberKey, encodeSigned(BigInt64Array.from([1000n, 0n])));
    const swapped: Contribution__Output = {
      ...a,
      shares: a.shares.map((s) => (s.member_id === 'hospital-c' ? { ...s, ciphertexts: forged.map((x) => Buffer.from(x)) } : s)),
    };
    expect(refusal(() => runDecrypt('hospital-c', 'round-4', [swapped, b]))).toMatch(
      /contribution of hospital-a is not signed by it for round round-4/,
    );
    // Round 4's genuine shares presented as round 5's.
    expect(refusal(() => runDecrypt('hospital-c', 'round-5', [a, b]))).toMatch(/not signed by it for round round-5/);
    expect(refusal(() => runDecrypt('hospital-c', 'round-4', [a, a]))).toMatch(/site hospital-a contributes twice/);
    // The coordinator signs a share with its own certificate key.
    const coordShare = a.shares.find((s) => s.member_id === 'hospital-c')!;
    const signature = signContributionShare(kits.coordinator.keyPem, {
      fitId: FED,
      roundId: 'round-4',
      siteId: 'fedsynth-coordinator',
      memberId: 'hospital-c',
      point: 3,
      length: 2,
      quorum: 2,
      ciphertexts: coordShare.ciphertexts,
    });
    const byCoordinator: Contribution__Output = {
      ...a,
      site_id: 'fedsynth-coordinator',
      certificate_pem: kits.coordinator.certPem,
      shares: a.shares.map((s) => (s.member_id === 'hospital-c' ? { ...s, signature: Buffer.from(signature) } : s)),
    };
    expect(refusal(() => runDecrypt('hospital-c', 'round-4', [byCoordinator, b]))).toMatch(
      /contribution of fedsynth-coordinator carries a certificate without the site profile/,
    );
    // None of these refusals used up the member's one set for round 4: the genuine set still decrypts.
    expect(runDecrypt('hospital-c', 'round-4', [a, b]).share.length).toBe(2);
  });

  it('refuses a contribution signed with a CA-issued certificate the roster does not list, for a new id or a listed one', () => {
    const r6 = measureRound('round-6');
    const [a, b] = [r6.get('hospital-a')!, r6.get('hospital-b')!];
    const resigned = (kit: string, siteId: string): Contribution__Output => {
      const share = a.shares.find((s) => s.member_id === 'hospital-c')!;
      const signature = signContributionShare(kits[kit].keyPem, {
        fitId: FED,
        roundId: 'round-6',
        siteId,
        memberId: 'hospital-c',
        point: 3,
        length: 2,
        quorum: 2,
        ciphertexts: share.ciphertexts,
      });
      return {
        ...a,
        site_id: siteId,
        certificate_pem: kits[kit].certPem,
        shares: a.shares.map((s) => (s.member_id === 'hospital-c' ? { ...s, signature: Buffer.from(signature) } : s)),
      };
    };
    // Without the roster, either would make a quorum of 2 out of one real site's share.
    expect(refusal(() => runDecrypt('hospital-c', 'round-6', [resigned('extra-x', 'hospital-x'), b]))).toMatch(
      /contribution of hospital-x is not a site of the federation roster \(roster version 1\)/,
    );
    expect(refusal(() => runDecrypt('hospital-c', 'round-6', [a, resigned('second-b', 'hospital-b')]))).toMatch(
      /contribution of hospital-b carries a certificate whose key is not the one the federation roster lists for it \(roster version 1\)/,
    );
    expect(runDecrypt('hospital-c', 'round-6', [a, b]).share.length).toBe(2);
  });

  it('a site clips each cell to the contribution bound the task declares, and says how many it clipped', () => {
    // hospital-b holds sex = [1, 1, 1, 0]: counts [1, 3]; a bound of 2 clips one cell.
    const answer = measure(ctx('hospital-b', 'clip-b', 'round-clip'), measureSpec(2));
    expect(answer.clippedCells).toBe(1);
    expect(measure(ctx('hospital-a', 'clip-a', 'round-clip'), measureSpec(3)).clippedCells).toBe(0);
  });
});

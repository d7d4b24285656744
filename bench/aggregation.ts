/**
 * Encrypted threshold aggregation (privacy/crypto/secure-aggregation.ts) vs the plaintext sum of the
 * same noised vectors, measured in the same run.
 *
 *   npx tsx bench/aggregation.ts [--sites 10] [--length 100000] [--committee 3] [--threshold 2]
 *
 * Prints wall times per phase, bytes per value on the wire, and the encrypted/plaintext ratio.
 * Single process: "site", "coordinator" and "member" work run one after another, so the
 * encrypted total is the sum of all parties' CPU time (in a real federation sites encrypt in
 * parallel; the per-site figure is printed too).
 *
 * Verifiable sums (privacy/crypto/verifiable-sum.ts): sites also sign each member's share, and a
 * member checks every signature and adds the shares itself instead of decrypting the
 * coordinator's sum; the member's cost and bytes are printed against that baseline.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Bfv } from '../privacy/crypto/bfv.ts';
import { signContributionShare, verifiedSum, type SignedShare } from '../privacy/crypto/verifiable-sum.ts';
import { DiscreteGaussianSampler } from '../privacy/dp/discrete-gaussian.ts';
import { rational } from '../privacy/dp/rational.ts';
import {
  accumulate,
  combine,
  partialDecrypt,
  prepareContribution,
  type Committee,
  type Contribution,
} from '../privacy/crypto/secure-aggregation.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const sites = arg('sites', 10);
const length = arg('length', 100_000);
const k = arg('committee', 3);
const t = arg('threshold', 2);
const ms = (t0: number): number => performance.now() - t0;
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(2));

console.log(`aggregation bench: ${sites} sites × ${length} values, committee k=${k}, threshold t=${t}`);

// Inputs (not timed): counts plus each site's discrete Gaussian noise share, σ² = 100.
let t0 = performance.now();
const sampler = new DiscreteGaussianSampler(rational(100n));
const vectors: BigInt64Array[] = [];
for (let s = 0; s < sites; s++) {
  const noise = sampler.sampleVector(length);
  const v = new BigInt64Array(length);
  for (let i = 0; i < length; i++) v[i] = BigInt((i * 31 + s * 7) % 1000) + noise[i];
  vectors.push(v);
}
const tNoise = ms(t0);

// Plaintext baseline: the coordinator adds the vectors.
t0 = performance.now();
const plain = new BigInt64Array(length);
for (const v of vectors) for (let i = 0; i < length; i++) plain[i] += v[i];
const tPlain = ms(t0);

// Encrypted threshold aggregation.
const bfv = await Bfv.create();
t0 = performance.now();
const keys = Array.from({ length: k }, () => bfv.generateKeyPair());
const committee: Committee = keys.map((kp, j) => ({ memberId: `m${j + 1}`, point: j + 1, publicKey: kp.publicKey }));
const tKeygen = ms(t0);

let tPrepare = 0;
let tAccumulate = 0;
let tSign = 0;
let siteBytes = 0;
let acc: Contribution | null = null;
const siteKeys = Array.from({ length: sites }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
// Member 1's signed shares, as its decryption input carries them.
const signedForMember1: SignedShare[] = [];
for (const [s, v] of vectors.entries()) {
  t0 = performance.now();
  const c = prepareContribution(bfv, v, committee, t);
  tPrepare += ms(t0);
  for (const sh of c.shares) for (const ct of sh.ciphertexts) siteBytes += ct.length;
  t0 = performance.now();
  const keyPem = siteKeys[s].privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const fields = (sh: (typeof c.shares)[number]) => ({
    fitId: 'bench',
    roundId: 'r1',
    siteId: `site-${s}`,
    memberId: sh.memberId,
    point: sh.point,
    length,
    quorum: sites,
    ciphertexts: sh.ciphertexts,
  });
  const signatures = c.shares.map((sh) => signContributionShare(keyPem, fields(sh)));
  tSign += ms(t0);
  signedForMember1.push({
    siteId: `site-${s}`,
    certificatePem: siteKeys[s].publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    quorum: sites,
    ciphertexts: c.shares[0].ciphertexts,
    signature: signatures[0],
  });
  t0 = performance.now();
  acc = accumulate(bfv, acc, c);
  tAccumulate += ms(t0);
}
siteBytes /= sites;

// t members answer (the others are treated as missing).
t0 = performance.now();
const partials = acc!.shares
  .slice(0, t)
  .map((s, j) => ({ point: s.point, share: partialDecrypt(bfv, keys[j].secretKey, s.ciphertexts, length) }));
const tDecrypt = ms(t0);
t0 = performance.now();
const total = combine(partials, t);
const tCombine = ms(t0);

// One member, verifiable: check the signed shares, add them itself, decrypt that sum.
t0 = performance.now();
const ownSum = verifiedSum(
  bfv,
  signedForMember1,
  { fitId: 'bench', roundId: 'r1', memberId: 'm1', point: 1, length, contributors: sites },
  () => null,
);
const tVerifySum = ms(t0);
t0 = performance.now();
const ownPartial = partialDecrypt(bfv, keys[0].secretKey, ownSum, length);
const tOwnDecrypt = ms(t0);
const sameShare = Buffer.from(ownPartial.buffer).equals(Buffer.from(partials[0].share.buffer));
const memberInBytes = signedForMember1.reduce((a, s) => a + s.ciphertexts.reduce((b, c) => b + c.length, 0) + s.signature.length, 0);
bfv.dispose();

const exact = Buffer.from(total.buffer).equals(Buffer.from(plain.buffer));
const tEncrypted = tPrepare + tAccumulate + tDecrypt + tCombine;
const toMemberBytes = acc!.shares.slice(0, t).reduce((a, s) => a + s.ciphertexts.reduce((b, c) => b + c.length, 0), 0);

console.log(`noise sampling (not in either total): ${fmt(tNoise)} ms (${fmt((tNoise * 1000) / (sites * length))} µs/value)`);
console.log(`committee key generation (once per federation): ${fmt(tKeygen)} ms, public key ${keys[0].publicKey.length} bytes`);
console.log('');
console.log(`plaintext sum:                 ${fmt(tPlain)} ms`);
console.log(`encrypted threshold sum:       ${fmt(tEncrypted)} ms`);
console.log(`  sites share+encrypt (total): ${fmt(tPrepare)} ms (${fmt(tPrepare / sites)} ms per site)`);
console.log(`  coordinator homomorphic add: ${fmt(tAccumulate)} ms`);
console.log(`  ${t} members decrypt:          ${fmt(tDecrypt)} ms`);
console.log(`  coordinator interpolation:   ${fmt(tCombine)} ms`);
console.log(`exact match with plaintext sum: ${exact}`);
console.log('');
console.log(
  `wire, site → coordinator: ${(siteBytes / 2 ** 20).toFixed(1)} MiB per site = ${fmt(siteBytes / length)} bytes/value (plaintext int64: 8 bytes/value)`,
);
console.log(
  `wire, coordinator ↔ members: ${(toMemberBytes / 2 ** 20).toFixed(1)} MiB of summed ciphertexts out, ${fmt((t * length * 4) / 2 ** 20)} MiB of partials back`,
);
console.log(`ratio encrypted/plaintext: time ×${fmt(tEncrypted / tPlain)}, site upload bytes ×${fmt(siteBytes / (8 * length))}`);
console.log('');
const memberBaseline = tDecrypt / t;
console.log(`verifiable sums, one member (baseline: decrypt the coordinator's sum, ${fmt(memberBaseline)} ms):`);
console.log(`  sites sign their shares:     ${fmt(tSign / sites)} ms per site`);
console.log(
  `  member verifies ${sites} signatures and adds the shares: ${fmt(tVerifySum)} ms; decrypts its own sum: ${fmt(tOwnDecrypt)} ms`,
);
console.log(
  `  member time ×${fmt((tVerifySum + tOwnDecrypt) / memberBaseline)}, bytes in ×${fmt(memberInBytes / (toMemberBytes / t))} (${(memberInBytes / 2 ** 20).toFixed(1)} MiB)`,
);
console.log(`  same partial decryption as from the coordinator's sum: ${sameShare}`);
if (!exact || !sameShare) process.exitCode = 1;

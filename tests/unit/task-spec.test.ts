// The wire task specs: every kind decodes to its own type, and every malformed spec is refused
// with a reason naming the field, before a site acts on it.
import { describe, expect, it } from 'vitest';
import {
  decodeTaskSpec,
  InvalidTaskSpecError,
  isTaskKind,
  parsePreflightAnswer,
  parseTaskSpec,
  TASK_KINDS,
  type PreflightSpec,
  type DecryptSpec,
  type KeygenSpec,
  type MeasureSpec,
} from '../../proto/task-spec.ts';

const bfv = { polyModulusDegree: 4096, coeffModulusBits: [36, 36, 37], plainModulus: '65537' };
const member = (point: number) => ({
  memberId: `site-${point}`,
  point,
  publicKey: 'cGs=',
  signature: 'c2ln',
  certificatePem: '-----BEGIN CERTIFICATE-----\n…',
});
const keygen: KeygenSpec = { kind: 'keygen', point: 1, bfv };
const decrypt: DecryptSpec = { kind: 'decrypt', measureRoundId: 'fed-1/measure-3', point: 2, length: 65, contributors: 3, bfv };
const measure: MeasureSpec = {
  kind: 'measure',
  marginals: [['age'], ['age', 'sex']],
  sigmaSite2: { num: '2000', den: '3' },
  quorum: 2,
  rho: 0.01,
  threshold: 2,
  committee: [member(1), member(2), member(3)],
  bfv,
  maxCellCount: 500_000,
};

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidTaskSpecError);
    return (err as Error).message;
  }
  throw new Error('expected InvalidTaskSpecError');
}

const withField = (spec: object, field: string, value: unknown) => JSON.stringify({ ...spec, [field]: value });

describe('task specs', () => {
  it('round-trips each kind, typed by its kind', () => {
    const k = parseTaskSpec('keygen', JSON.stringify(keygen));
    const m = parseTaskSpec('measure', JSON.stringify(measure));
    const d = parseTaskSpec('decrypt', JSON.stringify(decrypt));
    expect(k).toEqual(keygen);
    expect(m).toEqual(measure);
    expect(d).toEqual(decrypt);
    // Typed access without a cast: these lines would not compile on the union.
    expect(k.point + d.contributors + m.committee.length).toBe(1 + 3 + 3);
    expect(decodeTaskSpec('measure', JSON.parse(JSON.stringify(measure))).marginals).toEqual(measure.marginals);
  });

  it('drops fields it does not know (a site acts only on what it validated)', () => {
    expect(parseTaskSpec('keygen', withField(keygen, 'extra', 'x'))).toEqual(keygen);
  });

  it('knows exactly the five kinds', () => {
    expect([...TASK_KINDS]).toEqual(['preflight', 'keygen', 'measure', 'decrypt', 'mia-histogram']);
    expect(isTaskKind('measure')).toBe(true);
    expect(isTaskKind('train')).toBe(false);
    expect(reason(() => parseTaskSpec('train', '{}'))).toBe(
      'unknown task kind "train" (known: preflight, keygen, measure, decrypt, mia-histogram)',
    );
  });

  it('decodes a preflight spec and refuses a malformed one, naming the field', () => {
    const ok: PreflightSpec = {
      kind: 'preflight',
      epsilon: 1,
      delta: 1e-9,
      rhoTotal: 0.0127,
      quorum: 2,
      threshold: 2,
      committee: ['a', 'b', 'c'],
    };
    expect(parseTaskSpec('preflight', JSON.stringify(ok))).toEqual(ok);
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'epsilon', 0)))).toBe('epsilon must be a positive number, got 0');
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'delta', 1)))).toBe('delta must be below 1, got 1');
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'rhoTotal', 'lots')))).toBe(
      'rhoTotal must be a positive number, got "lots"',
    );
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'committee', [])))).toBe(
      'committee must be a non-empty array of member ids',
    );
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'committee', ['a', 'a'])))).toBe('committee repeats a member');
    expect(reason(() => parseTaskSpec('preflight', withField(ok, 'threshold', 4)))).toBe('threshold 4 exceeds committee size 3');
  });

  it('parses a preflight answer and refuses a malformed one', () => {
    const body = (o: unknown) => Buffer.from(JSON.stringify(o));
    const ok = { contribute: { ok: false, reason: 'cap' }, decrypt: { ok: true }, remainingRho: 0.001, neededRho: 0.0127 };
    expect(parsePreflightAnswer(body(ok))).toEqual(ok);
    expect(reason(() => parsePreflightAnswer(Buffer.from('{')))).toBe('preflight answer is not valid JSON');
    expect(reason(() => parsePreflightAnswer(body([])))).toBe('preflight answer must be a JSON object');
    expect(reason(() => parsePreflightAnswer(body({ ...ok, contribute: { ok: false } })))).toBe('contribute says no without a reason');
    expect(reason(() => parsePreflightAnswer(body({ ...ok, decrypt: { ok: 'yes' } })))).toBe(
      'decrypt must be {ok: boolean, reason?: string}',
    );
    expect(reason(() => parsePreflightAnswer(body({ ...ok, remainingRho: -1 })))).toBe('remainingRho must be a finite number ≥ 0');
  });

  it('refuses text that is not a JSON object, or a spec of another kind', () => {
    expect(reason(() => parseTaskSpec('keygen', '{"kind":'))).toBe('spec of keygen task is not valid JSON');
    expect(reason(() => parseTaskSpec('keygen', '[1]'))).toBe('spec must be a JSON object');
    expect(reason(() => parseTaskSpec('keygen', 'null'))).toBe('spec must be a JSON object');
    expect(reason(() => parseTaskSpec('decrypt', JSON.stringify(keygen)))).toBe('spec kind "keygen" does not match task kind "decrypt"');
    expect(reason(() => decodeTaskSpec('measure', 'measure'))).toBe('spec must be a JSON object');
  });

  it('refuses malformed BFV parameters and numbers', () => {
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'point', 0)))).toBe('point must be a positive integer, got 0');
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'point', 1.5)))).toBe('point must be a positive integer, got 1.5');
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'bfv', 'big')))).toBe('bfv must be an object');
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'bfv', { ...bfv, coeffModulusBits: [] })))).toBe(
      'bfv.coeffModulusBits must be a non-empty array',
    );
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'bfv', { ...bfv, coeffModulusBits: [36, -1] })))).toBe(
      'bfv.coeffModulusBits[1] must be a positive integer, got -1',
    );
    expect(reason(() => parseTaskSpec('keygen', withField(keygen, 'bfv', { ...bfv, plainModulus: 65537 })))).toBe(
      'bfv.plainModulus must be a decimal integer string',
    );
    expect(reason(() => parseTaskSpec('decrypt', withField(decrypt, 'contributors', '3')))).toBe(
      'contributors must be a positive integer, got "3"',
    );
    expect(reason(() => parseTaskSpec('decrypt', withField(decrypt, 'measureRoundId', '')))).toMatch(
      /^measureRoundId must be a non-empty string/,
    );
  });

  it('refuses malformed measure specs with the field named', () => {
    const bad = (field: string, value: unknown) => reason(() => parseTaskSpec('measure', withField(measure, field, value)));
    expect(bad('marginals', [])).toBe('marginals must be a non-empty array');
    expect(bad('marginals', [['age'], []])).toBe('marginals[1] must be a non-empty array of attribute names');
    expect(bad('marginals', [['age', 3]])).toBe('marginals[0] must be a non-empty array of attribute names');
    expect(bad('marginals', [['age', 'age']])).toBe('marginals[0] repeats an attribute');
    expect(bad('sigmaSite2', 2.5)).toBe('sigmaSite2 must be {num, den}');
    expect(bad('sigmaSite2', { num: '1', den: '0' })).toBe('sigmaSite2 must be positive');
    expect(bad('sigmaSite2', { num: '-1', den: '1' })).toBe('sigmaSite2.num must be a decimal integer string');
    expect(bad('rho', 0)).toBe('rho must be a positive number');
    expect(bad('rho', null)).toBe('rho must be a positive number');
    expect(bad('committee', [])).toBe('committee must be a non-empty array');
    expect(bad('committee', [member(1), { ...member(2), signature: '' }])).toBe('committee[1].signature must be a non-empty string');
    expect(bad('committee', [member(1), 'site-2'])).toBe('committee[1] must be an object');
    expect(bad('committee', [member(1), member(1)])).toBe('committee points must be distinct');
    expect(bad('threshold', 4)).toBe('threshold 4 exceeds committee size 3');
    expect(bad('quorum', 0)).toBe('quorum must be a positive integer, got 0');
  });
});

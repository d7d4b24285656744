// A whole fit over real gRPC + mutual TLS on loopback, real BFV threshold aggregation, real
// ledgers and a real PGlite store: spend, privacy of individual vectors, and result quality.
import type { GraphicalModelJSON } from '../../model/pgm/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort, emitCohort, type FitReport } from '../../coordinator/coordinator.ts';
import { parseWhere } from '../../schema/where.ts';
import { readPatientTable } from '../../site-agent/patients.ts';
import { NdjsonFhirSource } from '../../site-agent/connectors/fhir-ndjson.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { rhoFromEpsilonDelta, rhoDistributedDiscreteGaussian } from '../../privacy/dp/accountant.ts';
import { decodeTaskSpec } from '../../proto/task-spec.ts';
import { wireTaskSpec } from '../../coordinator/audit.ts';
import { FIELD_PRIME_BIG } from '../../privacy/crypto/field.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';
import { roundDomain } from '../../federation/run-fit.ts';

let fed: TestFederation;
let report: FitReport;

beforeAll(async () => {
  // The default schema plus a declared structure, so the declared rounds run through the real
  // accounting checks below like any other round; the second measures age in bands (band
  // queries: the round's value map travels to the sites, the release is stored coarsened).
  const schemaText = readFileSync(DEFAULT_SCHEMA_PATH, 'utf8').replace(
    '\nprivacy:',
    '\nstructure:\n  - share: 0.2\n    marginals:\n      - [age, hypertension]\n      - [type2_diabetes, hba1c]\n' +
      '  - share: 0.1\n    coarsen: { age: [0, 18, 40, 65] }\n    marginals:\n      - [age, hypertension]\n      - [age, sex]\n\nprivacy:',
  );
  fed = await startTestFederation({ sites: 3, patients: 400, schemaText });
  report = await runFitAndCohort(fed.cfg, fed.coordinator);
  await Promise.all(Object.values(fed.agentRuns));
}, 240_000);

afterAll(async () => {
  await fed?.close();
});

describe('a federated fit end to end (in-process, real gRPC/mTLS/BFV/PGlite)', () => {
  it('charges every site exactly the sum of its per-round charges, within the fit budget', async () => {
    const charges = await fed.coordinator.store.chargesByRound(fed.cfg.federationId);
    const budget = rhoFromEpsilonDelta(fed.cfg.fit.epsilon, fed.cfg.fit.delta);
    for (const site of fed.cfg.sites) {
      const mine = charges.filter((c) => c.siteId === site);
      const sum = mine.reduce((s, c) => s + c.rho, 0);
      expect(mine.length).toBe(report.rounds.length);
      expect(report.perSite[site].rho).toBeCloseTo(sum, 15);
      expect(sum).toBeLessThanOrEqual(budget * (1 + 1e-12));
      expect(report.perSite[site].epsilon).toBeLessThanOrEqual(fed.cfg.fit.epsilon + 1e-9);
    }
    expect(report.total.rho).toBeCloseTo(
      report.rounds.reduce((s, r) => s + r.rho, 0),
      15,
    );
  });

  it("reports the coordinator's phases in order, with wall and CPU seconds, one entry per kind of round", () => {
    const names = report.timings.map((t) => t.phase);
    expect(names.slice(0, 2)).toEqual(['open the store', 'start the gRPC server']);
    for (const phase of ['committee keygen', 'plan selection', 'sites measure, noise, encrypt, sign, upload', 'estimate (mirror descent)'])
      expect(names).toContain(phase);
    expect(new Set(names).size).toBe(names.length);
    const measure = report.timings.find((t) => t.phase === 'sites measure, noise, encrypt, sign, upload')!;
    expect(measure.count).toBe(report.rounds.length);
    // One more selection than rounds: the plan is asked once more and says it is done.
    expect(report.timings.find((t) => t.phase === 'plan selection')!.count).toBe(report.rounds.length + 1);
    for (const t of report.timings) {
      expect(t.wallSeconds).toBeGreaterThanOrEqual(0);
      expect(t.cpuSeconds).toBeGreaterThanOrEqual(0);
    }
    expect(names.indexOf('estimate (mirror descent)')).toBeLessThan(names.indexOf('cohort draw and write'));
  });

  it('measures the declared structure first, at its share of the budget', () => {
    const budget = rhoFromEpsilonDelta(fed.cfg.fit.epsilon, fed.cfg.fit.delta);
    expect(report.rounds[0].name).toBe('declared-structure');
    expect(report.rounds[0].rho).toBeLessThanOrEqual(0.2 * budget * (1 + 1e-12));
    expect(report.rounds[0].rho).toBeGreaterThan(0.19 * budget);
    expect(report.rounds.slice(1).map((r) => r.name)).toContain('one-way');
  });

  it('measures the band round with its value map: bands at the sites, a coarsened release', async () => {
    const band = report.rounds[1];
    expect(band.name).toBe('declared-structure-2');
    const ms = await fed.coordinator.store.listMeasurements(fed.cfg.federationId, band.roundId);
    const bands = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3];
    expect(ms.map((m) => [m.attrs, m.values.length, m.coarsen])).toEqual([
      [['age', 'hypertension'], 8, { age: bands }],
      [['age', 'sex'], 16, { age: bands }],
    ]);
    // Both tables count every patient once, up to the released noise (3 sites × 400 patients).
    const total = ms[0].values.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - 1200)).toBeLessThan(8 * 6 * ms[0].sigmaTotal);
    // The audit log records the map with the release.
    const entries = await fed.coordinator.store.listAudit(fed.cfg.federationId);
    const rel = entries.map((e) => e.event).find((e) => e.type === 'measurement-released' && e.roundId === band.roundId);
    expect(rel && 'valueMap' in rel ? rel.valueMap : undefined).toEqual({ age: bands });
    // [age band, hypertension] 4 × 2 and [age band, sex] 4 × 4 cells, not 11 × 2 and 11 × 4.
    expect(rel && 'dimension' in rel ? rel.dimension : undefined).toBe(8 + 16);
  });

  it("charges exactly the noise that was added: ρ recomputed from each round's σ² and quorum", async () => {
    for (const r of report.rounds) {
      const round = (await fed.coordinator.store.getRound(fed.cfg.federationId, r.roundId))!;
      const spec = decodeTaskSpec('measure', wireTaskSpec({ kind: 'measure', spec: round.spec }));
      const m = spec.marginals.length;
      const measuredOn = roundDomain(fed.siteData['hospital-a'].data.domain, spec);
      const dimension = spec.marginals.reduce((s, attrs) => s + measuredOn.cells(attrs), 0);
      const rho = rhoDistributedDiscreteGaussian({
        l2Sensitivity: Math.sqrt(m),
        l1Sensitivity: m,
        sigmaSite2: { num: BigInt(spec.sigmaSite2.num), den: BigInt(spec.sigmaSite2.den) },
        parties: spec.quorum,
        dimension,
      });
      expect(r.rho).toBe(rho);
      // The quorum's noise alone meets the plan's target: σ² per site × quorum ≥ what one Gaussian would need.
      expect(spec.quorum).toBe(fed.cfg.rounds.quorum);
    }
  });

  it("each site's own durable ledger agrees with the coordinator's record", () => {
    for (const site of fed.cfg.sites) {
      const ledger = openLedger(fed.siteCfgs[site].stateDir);
      try {
        expect(ledger.totalRho()).toBeCloseTo(report.perSite[site].rho, 12);
        expect(ledger.records().length).toBe(report.rounds.length);
      } finally {
        ledger.close();
      }
    }
  });

  it("never stores or holds a single site's noised vector, only ciphertexts and sums", async () => {
    const store = fed.coordinator.store;
    const dump: string[] = [];
    const tables = ['submissions', 'aggregates', 'partials', 'measurements', 'tasks', 'rounds', 'audit_log', 'charges'];
    for (const t of tables) {
      const { rows } = await store.sql.query(`SELECT * FROM ${t}`);
      for (const row of rows as Record<string, unknown>[]) {
        for (const v of Object.values(row)) {
          if (v instanceof Uint8Array) dump.push(Buffer.from(v).toString('hex'));
          else dump.push(JSON.stringify(v));
        }
      }
    }
    const haystack = dump.join('\n');
    let checked = 0;
    for (const site of fed.cfg.sites) {
      for (const vector of fed.noisedVectors[site]) {
        // The field encoding a naive implementation would store, and the JSON a naive one would log.
        const field = new Uint32Array(vector.length);
        vector.forEach((v, i) => (field[i] = Number(((v % FIELD_PRIME_BIG) + FIELD_PRIME_BIG) % FIELD_PRIME_BIG)));
        const head = Buffer.from(field.buffer).subarray(0, 64).toString('hex');
        const json = JSON.stringify(Array.from(vector.slice(0, 16), Number)).slice(1, -1);
        expect(haystack.includes(head)).toBe(false);
        expect(haystack.includes(json)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe(3 * report.rounds.length);
    // The released measurements are the sums of the three sites' noised vectors, exactly.
    const released = await store.listMeasurements(fed.cfg.federationId, report.rounds[0].roundId);
    const flat = released.sort((a, b) => a.seq - b.seq).flatMap((m) => m.values);
    const sum = fed.noisedVectors['hospital-a'][0].map(
      (v, i) => v + fed.noisedVectors['hospital-b'][0][i] + fed.noisedVectors['hospital-c'][0][i],
    );
    expect(flat).toEqual(Array.from(sum, Number));
  });

  it('releases noisy 1-way marginals close to the pooled truth', async () => {
    const oneWay = report.rounds.find((r) => r.name === 'one-way')!;
    const released = await fed.coordinator.store.listMeasurements(fed.cfg.federationId, oneWay.roundId);
    const age = released.find((m) => m.attrs.length === 1 && m.attrs[0] === 'age')!;
    const total = age.values.reduce((s, v) => s + v, 0);
    // 1200 patients; noise σ ≈ 65 per cell over 10 cells.
    expect(Math.abs(total - 1200)).toBeLessThan(6 * age.sigmaTotal * Math.sqrt(age.values.length));
  });

  it('writes a validated FHIR cohort and a report', () => {
    expect(report.cohort?.n).toBe(200);
    const patients = readFileSync(join(fed.cfg.fit.outDir, 'cohort', 'fhir', 'Patient.ndjson'), 'utf8')
      .trim()
      .split('\n');
    expect(patients).toHaveLength(200);
    expect(JSON.parse(patients[0]).resourceType).toBe('Patient');
    expect(existsSync(join(fed.cfg.fit.outDir, 'report.json'))).toBe(true);
    expect(report.sitesContributed).toEqual(['hospital-a', 'hospital-b', 'hospital-c']);
  });

  it('keeps an intact audit chain of issued tasks, releases and charges', async () => {
    const verdict = await fed.coordinator.store.verifyAuditChain(fed.cfg.federationId);
    expect(verdict.ok).toBe(true);
    const events = (await fed.coordinator.store.listAudit(fed.cfg.federationId)).map((e) => (e.event as { type: string }).type);
    expect(events.filter((t) => t === 'measurement-released')).toHaveLength(report.rounds.length);
    expect(events.filter((t) => t === 'charge')).toHaveLength(3 * report.rounds.length);
  });

  it('samples a filtered cohort that respects its filter, identically for the same seed', async () => {
    const where = parseWhere(fed.coordinator.engine.schema, 'age>=40,age<80,condition=hypertension');
    const model = (await fed.coordinator.store.listModels(fed.cfg.federationId))[0];
    const { GraphicalModel } = await import('../../model/pgm/index.ts');
    const gm = GraphicalModel.fromJSON(model.model as GraphicalModelJSON);
    const dirs = [join(fed.dir, 'c1'), join(fed.dir, 'c2')];
    for (const dir of dirs) {
      await emitCohort(fed.cfg, fed.coordinator.store, fed.coordinator.engine.schema, model.id, gm, { n: 150, seed: 9, where, dir });
    }
    const a = readFileSync(join(dirs[0], 'fhir', 'Patient.ndjson'), 'utf8');
    expect(readFileSync(join(dirs[1], 'fhir', 'Patient.ndjson'), 'utf8')).toBe(a);
    const read = await readPatientTable(new NdjsonFhirSource(join(dirs[0], 'fhir')), fed.coordinator.engine.schema);
    expect(read.table.n).toBe(150);
    const age = read.table.columns[read.table.names.indexOf('age')];
    const htn = read.table.columns[read.table.names.indexOf('hypertension')];
    for (let i = 0; i < read.table.n; i++) {
      expect(where.age).toContain(age[i]);
      expect(htn[i]).toBe(1);
    }
  });
});

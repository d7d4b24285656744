// The privacy spend: every site's charge for a round, written in the same transaction as the
// round's released measurements and its audit entries, and the spend read back per round and site.
import type { AuditEntry, AuditEvent } from '../../privacy/audit-log/chain.ts';
import { appendAuditTx, type AuditKey } from './audit.ts';
import { assertTransition, lockRound } from './rounds.ts';
import { json, toCharge, toMeasurement, toRound, toSiteSpend } from './rows.ts';
import type { SqlClient } from './sql.ts';
import { StoreError, type Charge, type ChargeInput, type Measurement, type MeasurementInput, type Round, type SiteSpend } from './types.ts';

function assertFiniteNonNegative(x: number, what: string): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
    throw new StoreError('invalid', `${what} must be a finite number >= 0, got ${String(x)}`);
  }
}

/**
 * In ONE transaction: write every site's charge for the round, then the released
 * measurements, the caller's audit events (e.g. one `charge` per site and a
 * `measurement-released`), and finally the round state `released`. If anything fails,
 * nothing is written: a result can never be released without its spend recorded.
 * The round must be `closed` or `decrypting`.
 *
 * `opts.beforeRelease` runs inside the transaction just before the state change (fault
 * injection in tests; throwing from it rolls everything back).
 */
export async function recordChargesAndRelease(
  sql: SqlClient,
  federationId: string,
  roundId: string,
  charges: readonly ChargeInput[],
  measurements: readonly MeasurementInput[],
  opts: { auditEvents?: readonly AuditEvent[]; beforeRelease?: (tx: SqlClient) => Promise<void> },
  signer: () => AuditKey,
): Promise<{ round: Round; audit: AuditEntry[] }> {
  for (const c of charges) assertFiniteNonNegative(c.rho, `rho for site ${c.siteId}`);
  for (const m of measurements) assertFiniteNonNegative(m.sigmaTotal, 'sigmaTotal');
  const seen = new Set<string>();
  for (const c of charges) {
    if (seen.has(c.siteId)) throw new StoreError('invalid', `two charges for site ${c.siteId} in round ${roundId}`);
    seen.add(c.siteId);
  }
  const key = opts.auditEvents?.length ? signer() : null;
  return sql.transaction(async (tx) => {
    const round = await lockRound(tx, federationId, roundId, 'UPDATE');
    if (round.state !== 'closed' && round.state !== 'decrypting') {
      throw new StoreError('invalid_state', `round ${roundId} is ${round.state}: cannot release`);
    }
    // 1. charges first
    for (const c of charges) {
      await tx.query(`INSERT INTO charges (federation_id, round_id, site_id, rho, mechanism) VALUES ($1, $2, $3, $4, $5::jsonb)`, [
        federationId,
        roundId,
        c.siteId,
        c.rho,
        json(c.mechanism),
      ]);
    }
    // 2. the released (noised) measurements
    let i = 0;
    for (const m of measurements) {
      i += 1;
      await tx.query(
        `INSERT INTO measurements (federation_id, round_id, seq, attrs, values_json, sigma_total, coarsen_json)
         VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::jsonb)`,
        [federationId, roundId, m.seq ?? i, json(m.attrs), json(m.values), m.sigmaTotal, m.coarsen ? json(m.coarsen) : null],
      );
    }
    // 3. the audit record of what was spent and released
    const audit: AuditEntry[] = [];
    for (const ev of opts.auditEvents ?? []) audit.push(await appendAuditTx(tx, federationId, ev, key!));
    if (opts.beforeRelease) await opts.beforeRelease(tx);
    // 4. only now the result becomes released
    assertTransition(round, 'released');
    const { rows } = await tx.query(
      `UPDATE rounds SET state = 'released', closed_at = COALESCE(closed_at, now())
       WHERE federation_id = $1 AND round_id = $2 RETURNING *`,
      [federationId, roundId],
    );
    return { round: toRound(rows[0]), audit };
  });
}

export async function listMeasurements(sql: SqlClient, federationId: string, roundId?: string): Promise<Measurement[]> {
  const { rows } = await sql.query(
    `SELECT m.* FROM measurements m
     JOIN rounds r ON r.federation_id = m.federation_id AND r.round_id = m.round_id
     WHERE m.federation_id = $1 AND ($2::text IS NULL OR m.round_id = $2)
     ORDER BY r.seq, m.seq`,
    [federationId, roundId ?? null],
  );
  return rows.map(toMeasurement);
}

export async function chargesByRound(sql: SqlClient, federationId: string, roundId?: string): Promise<Charge[]> {
  const { rows } = await sql.query(
    `SELECT c.* FROM charges c
     JOIN rounds r ON r.federation_id = c.federation_id AND r.round_id = c.round_id
     WHERE c.federation_id = $1 AND ($2::text IS NULL OR c.round_id = $2)
     ORDER BY r.seq, c.site_id`,
    [federationId, roundId ?? null],
  );
  return rows.map(toCharge);
}

/** Total ρ charged per site (zCDP composes additively). */
export async function spendBySite(sql: SqlClient, federationId: string): Promise<SiteSpend[]> {
  const { rows } = await sql.query(
    `SELECT site_id, SUM(rho)::float8 AS rho, COUNT(*)::int AS rounds FROM charges
     WHERE federation_id = $1 GROUP BY site_id ORDER BY site_id`,
    [federationId],
  );
  return rows.map(toSiteSpend);
}

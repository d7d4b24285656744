/**
 * The service's records: studies (one fit each), cohort requests, API keys, site policies as
 * published at registration, and FHIR Bulk Data export jobs. Kept apart from store.ts: the fit's
 * own tables stay as they are, a study only names the fit id its rounds are stored under.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, createHash, type ScryptOptions } from 'node:crypto';
import type { Row, SqlClient } from './sql.ts';
import type { Migration } from './migrations.ts';

export const STUDIES_MIGRATION: Migration = {
  version: 3,
  name: 'studies, cohort requests, api keys, site policies, bulk exports',
  sql: `
CREATE TABLE studies (
  id            text PRIMARY KEY,
  federation_id text NOT NULL,
  fit_id        text NOT NULL UNIQUE,
  title         text NOT NULL,
  epsilon       double precision NOT NULL CHECK (epsilon > 0),
  delta         double precision NOT NULL CHECK (delta > 0 AND delta < 1),
  attributes    jsonb,
  plan          text NOT NULL,
  status        text NOT NULL,
  requester     text NOT NULL,
  approver      text,
  progress_json jsonb NOT NULL DEFAULT '{}'::jsonb,
  model_id      text,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cohort_requests (
  id            text PRIMARY KEY,
  federation_id text NOT NULL,
  study_id      text NOT NULL REFERENCES studies(id),
  n             integer NOT NULL CHECK (n > 0),
  seed          text NOT NULL,
  where_text    text NOT NULL,
  where_json    jsonb NOT NULL,
  modalities    jsonb NOT NULL,
  status        text NOT NULL,
  progress_json jsonb NOT NULL DEFAULT '{}'::jsonb,
  report_json   jsonb,
  out_dir       text NOT NULL,
  requester     text NOT NULL,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  role        text NOT NULL,
  salt        bytea NOT NULL,
  hash        bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE site_policies (
  federation_id  text NOT NULL,
  site_id        text NOT NULL,
  epsilon_cap    double precision NOT NULL,
  delta          double precision NOT NULL,
  rho_cap        double precision NOT NULL,
  spent_rho      double precision NOT NULL,
  published_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, site_id)
);

CREATE TABLE bulk_exports (
  id          text PRIMARY KEY,
  cohort_id   text NOT NULL REFERENCES cohort_requests(id),
  request_url text NOT NULL,
  requester   text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
`,
};

export const ROLES = ['researcher', 'operator', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export type StudyStatus = 'pending-approval' | 'queued' | 'fitting' | 'fitted' | 'failed';
export type CohortStatus = 'queued' | 'running' | 'completed' | 'failed';

export interface StudyProgress {
  phase?: string;
  message?: string;
  /** Measurement rounds released so far and the plan's rounds (when the plan knows its length). */
  round?: number;
  rounds?: number;
  /**
   * Measure rounds never released whose contributors already charged their own ledgers (each
   * site charges before it uploads): budget those sites spent on nothing. Set when a fit fails.
   */
  unreleasedCharges?: { roundId: string; state: string; sites: string[] }[];
}

export interface Study {
  id: string;
  federationId: string;
  fitId: string;
  title: string;
  epsilon: number;
  delta: number;
  attributes: string[] | null;
  plan: 'aim' | 'mst';
  status: StudyStatus;
  requester: string;
  approver: string | null;
  progress: StudyProgress;
  modelId: string | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CohortJob {
  id: string;
  federationId: string;
  studyId: string;
  n: number;
  seed: string;
  whereText: string;
  where: Record<string, number[]>;
  modalities: string[];
  status: CohortStatus;
  progress: { message?: string; fraction?: number };
  report: Record<string, unknown> | null;
  outDir: string;
  requester: string;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  createdAt: Date;
}

export interface PublishedPolicy {
  siteId: string;
  epsilonCap: number;
  delta: number;
  /** The cap that applies to this federation, in zCDP ρ (the smaller of the total and per-federation caps). */
  rhoCap: number;
  /** ρ the site's ledger had spent when it published (all federations). */
  spentRho: number;
  publishedAt: Date;
}

export interface BulkExport {
  id: string;
  cohortId: string;
  requestUrl: string;
  requester: string;
  createdAt: Date;
}

const json = (v: unknown): string => JSON.stringify(v ?? null);
const num = (v: unknown): number => Number(v);
const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toStudy(r: Row): Study {
  return {
    id: String(r.id),
    federationId: String(r.federation_id),
    fitId: String(r.fit_id),
    title: String(r.title),
    epsilon: num(r.epsilon),
    delta: num(r.delta),
    attributes: (r.attributes as string[] | null) ?? null,
    plan: String(r.plan) as Study['plan'],
    status: String(r.status) as StudyStatus,
    requester: String(r.requester),
    approver: str(r.approver),
    progress: (r.progress_json as StudyProgress) ?? {},
    modelId: str(r.model_id),
    error: str(r.error),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

function toCohortJob(r: Row): CohortJob {
  return {
    id: String(r.id),
    federationId: String(r.federation_id),
    studyId: String(r.study_id),
    n: num(r.n),
    seed: String(r.seed),
    whereText: String(r.where_text),
    where: r.where_json as Record<string, number[]>,
    modalities: r.modalities as string[],
    status: String(r.status) as CohortStatus,
    progress: (r.progress_json as CohortJob['progress']) ?? {},
    report: (r.report_json as Record<string, unknown> | null) ?? null,
    outDir: String(r.out_dir),
    requester: String(r.requester),
    error: str(r.error),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

// scrypt at N=2^14, r=8 (RFC 7914's interactive setting): tokens are 256-bit random secrets, the
// KDF only guards the database copy against being usable as a token.
const SCRYPT: ScryptOptions = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_BYTES = 32;
const TOKEN_PREFIX = 'fsk';

function scrypt(secret: string, salt: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(secret, salt, KEY_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `fsk_<key id>_<secret>`: the id finds the row, the secret is checked against its scrypt hash. */
export function parseToken(token: string): { id: string; secret: string } | null {
  const m = /^fsk_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { id: m[1], secret: m[2] } : null;
}

export class StudyStore {
  /** Verified tokens (by SHA-256 of the token) for a short while: scrypt costs ~50 ms per check. */
  private readonly verified = new Map<string, { key: ApiKey; until: number }>();

  constructor(private readonly sql: SqlClient) {}

  // ----- API keys -----

  /** Creates a key and returns the token: the only time it exists in clear. */
  async createApiKey(name: string, role: Role): Promise<{ key: ApiKey; token: string }> {
    if (!(ROLES as readonly string[]).includes(role)) throw new Error(`unknown role ${JSON.stringify(role)} (roles: ${ROLES.join(', ')})`);
    if (!name.trim() || name.length > 200) throw new Error('a key needs a name of 1 to 200 characters');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scrypt(secret, salt);
    const { rows } = await this.sql.query(
      'INSERT INTO api_keys (id, name, role, salt, hash) VALUES ($1, $2, $3, $4, $5) RETURNING id, name, role, created_at',
      [id, name.trim(), role, salt, hash],
    );
    return { key: toKey(rows[0]), token: `${TOKEN_PREFIX}_${id}_${secret}` };
  }

  /** The key a bearer token belongs to, or null (unknown, revoked or wrong secret). */
  async verifyToken(token: string): Promise<ApiKey | null> {
    const digest = createHash('sha256').update(token).digest('hex');
    const hit = this.verified.get(digest);
    if (hit && hit.until > Date.now()) return hit.key;
    const parsed = parseToken(token);
    if (!parsed) return null;
    const { rows } = await this.sql.query('SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL', [parsed.id]);
    if (!rows.length) return null;
    const expected = Buffer.from(rows[0].hash as Uint8Array);
    const got = await scrypt(parsed.secret, rows[0].salt as Uint8Array);
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return null;
    const key = toKey(rows[0]);
    this.verified.set(digest, { key, until: Date.now() + 60_000 });
    return key;
  }

  async listApiKeys(): Promise<(ApiKey & { revoked: boolean })[]> {
    const { rows } = await this.sql.query('SELECT * FROM api_keys ORDER BY created_at, id');
    return rows.map((r) => ({ ...toKey(r), revoked: r.revoked_at !== null }));
  }

  async revokeApiKey(id: string): Promise<boolean> {
    const { rowCount } = await this.sql.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    this.verified.clear();
    return rowCount > 0;
  }

  // ----- studies -----

  async createStudy(s: Pick<Study, 'id' | 'federationId' | 'fitId' | 'title' | 'epsilon' | 'delta' | 'attributes' | 'plan' | 'requester'>) {
    const { rows } = await this.sql.query(
      `INSERT INTO studies (id, federation_id, fit_id, title, epsilon, delta, attributes, plan, status, requester)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, 'pending-approval', $9) RETURNING *`,
      [s.id, s.federationId, s.fitId, s.title, s.epsilon, s.delta, json(s.attributes), s.plan, s.requester],
    );
    return toStudy(rows[0]);
  }

  async getStudy(id: string): Promise<Study | null> {
    const { rows } = await this.sql.query('SELECT * FROM studies WHERE id = $1', [id]);
    return rows.length ? toStudy(rows[0]) : null;
  }

  async listStudies(federationId: string): Promise<Study[]> {
    const { rows } = await this.sql.query('SELECT * FROM studies WHERE federation_id = $1 ORDER BY created_at, id', [federationId]);
    return rows.map(toStudy);
  }

  /** Pending → queued, once; returns null when the study was not pending. */
  async approveStudy(id: string, approver: string): Promise<Study | null> {
    const { rows } = await this.sql.query(
      `UPDATE studies SET status = 'queued', approver = $2, updated_at = now() WHERE id = $1 AND status = 'pending-approval' RETURNING *`,
      [id, approver],
    );
    return rows.length ? toStudy(rows[0]) : null;
  }

  /** The study to run next: one already fitting (a restart resumes it) before the oldest queued one. */
  async nextStudy(federationId: string): Promise<Study | null> {
    const { rows } = await this.sql.query(
      `SELECT * FROM studies WHERE federation_id = $1 AND status IN ('fitting', 'queued')
       ORDER BY (status = 'fitting') DESC, updated_at, id LIMIT 1`,
      [federationId],
    );
    return rows.length ? toStudy(rows[0]) : null;
  }

  async setStudyState(
    id: string,
    patch: { status?: StudyStatus; progress?: StudyProgress; modelId?: string; error?: string | null },
  ): Promise<void> {
    await this.sql.query(
      `UPDATE studies SET status = COALESCE($2, status), progress_json = COALESCE($3::jsonb, progress_json),
         model_id = COALESCE($4, model_id), error = CASE WHEN $5::boolean THEN $6 ELSE error END, updated_at = now()
       WHERE id = $1`,
      [
        id,
        patch.status ?? null,
        patch.progress ? json(patch.progress) : null,
        patch.modelId ?? null,
        patch.error !== undefined,
        patch.error ?? null,
      ],
    );
  }

  // ----- cohort requests -----

  async createCohortJob(
    c: Pick<CohortJob, 'id' | 'federationId' | 'studyId' | 'n' | 'seed' | 'whereText' | 'where' | 'modalities' | 'outDir' | 'requester'>,
  ): Promise<CohortJob> {
    const { rows } = await this.sql.query(
      `INSERT INTO cohort_requests (id, federation_id, study_id, n, seed, where_text, where_json, modalities, status, out_dir, requester)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, 'queued', $9, $10) RETURNING *`,
      [c.id, c.federationId, c.studyId, c.n, c.seed, c.whereText, json(c.where), json(c.modalities), c.outDir, c.requester],
    );
    return toCohortJob(rows[0]);
  }

  async getCohortJob(id: string): Promise<CohortJob | null> {
    const { rows } = await this.sql.query('SELECT * FROM cohort_requests WHERE id = $1', [id]);
    return rows.length ? toCohortJob(rows[0]) : null;
  }

  async listCohortJobs(federationId: string): Promise<CohortJob[]> {
    const { rows } = await this.sql.query('SELECT * FROM cohort_requests WHERE federation_id = $1 ORDER BY created_at, id', [federationId]);
    return rows.map(toCohortJob);
  }

  /** Cohorts left queued or running (a restart runs them again: sampling is deterministic in its seed). */
  async unfinishedCohortJobs(federationId: string): Promise<CohortJob[]> {
    const { rows } = await this.sql.query(
      `SELECT * FROM cohort_requests WHERE federation_id = $1 AND status IN ('queued', 'running') ORDER BY created_at, id`,
      [federationId],
    );
    return rows.map(toCohortJob);
  }

  async setCohortState(
    id: string,
    patch: { status?: CohortStatus; progress?: CohortJob['progress']; report?: Record<string, unknown>; error?: string },
  ): Promise<void> {
    await this.sql.query(
      `UPDATE cohort_requests SET status = COALESCE($2, status), progress_json = COALESCE($3::jsonb, progress_json),
         report_json = COALESCE($4::jsonb, report_json), error = COALESCE($5, error), updated_at = now()
       WHERE id = $1`,
      [
        id,
        patch.status ?? null,
        patch.progress ? json(patch.progress) : null,
        patch.report ? json(patch.report) : null,
        patch.error ?? null,
      ],
    );
  }

  // ----- site policies -----

  async publishPolicy(federationId: string, p: Omit<PublishedPolicy, 'publishedAt'>): Promise<void> {
    await this.sql.query(
      `INSERT INTO site_policies (federation_id, site_id, epsilon_cap, delta, rho_cap, spent_rho) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (federation_id, site_id) DO UPDATE SET epsilon_cap = $3, delta = $4, rho_cap = $5, spent_rho = $6, published_at = now()`,
      [federationId, p.siteId, p.epsilonCap, p.delta, p.rhoCap, p.spentRho],
    );
  }

  async listPolicies(federationId: string): Promise<PublishedPolicy[]> {
    const { rows } = await this.sql.query('SELECT * FROM site_policies WHERE federation_id = $1 ORDER BY site_id', [federationId]);
    return rows.map((r) => ({
      siteId: String(r.site_id),
      epsilonCap: num(r.epsilon_cap),
      delta: num(r.delta),
      rhoCap: num(r.rho_cap),
      spentRho: num(r.spent_rho),
      publishedAt: date(r.published_at),
    }));
  }

  /**
   * ρ the coordinator charged each site across the federation and all its studies' fits, in
   * total and after a given instant per site (charges the site's published spend cannot include).
   */
  async chargesBySite(federationId: string, since: Record<string, Date> = {}): Promise<Record<string, { total: number; after: number }>> {
    const { rows } = await this.sql.query(
      `SELECT site_id, rho, recorded_at FROM charges WHERE federation_id = $1 OR federation_id LIKE $2 ORDER BY recorded_at`,
      [federationId, `${federationId.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`],
    );
    const out: Record<string, { total: number; after: number }> = {};
    for (const r of rows) {
      const site = String(r.site_id);
      const o = (out[site] ??= { total: 0, after: 0 });
      o.total += num(r.rho);
      const t = since[site];
      if (!t || date(r.recorded_at) > t) o.after += num(r.rho);
    }
    return out;
  }

  /** Charges of one fit over time (for the spend plot). */
  async chargeTimeline(fitIds: string[]): Promise<{ siteId: string; rho: number; at: Date; fitId: string }[]> {
    if (fitIds.length === 0) return [];
    const { rows } = await this.sql.query(
      `SELECT federation_id, site_id, rho, recorded_at FROM charges WHERE federation_id = ANY($1::text[]) ORDER BY recorded_at`,
      [fitIds],
    );
    return rows.map((r) => ({ siteId: String(r.site_id), rho: num(r.rho), at: date(r.recorded_at), fitId: String(r.federation_id) }));
  }

  // ----- bulk exports -----

  async createExport(e: Omit<BulkExport, 'createdAt'>): Promise<BulkExport> {
    const { rows } = await this.sql.query(
      'INSERT INTO bulk_exports (id, cohort_id, request_url, requester) VALUES ($1, $2, $3, $4) RETURNING *',
      [e.id, e.cohortId, e.requestUrl, e.requester],
    );
    return toExport(rows[0]);
  }

  async getExport(id: string): Promise<BulkExport | null> {
    const { rows } = await this.sql.query('SELECT * FROM bulk_exports WHERE id = $1', [id]);
    return rows.length ? toExport(rows[0]) : null;
  }
}

function toKey(r: Row): ApiKey {
  return { id: String(r.id), name: String(r.name), role: String(r.role) as Role, createdAt: date(r.created_at) };
}

function toExport(r: Row): BulkExport {
  return {
    id: String(r.id),
    cohortId: String(r.cohort_id),
    requestUrl: String(r.request_url),
    requester: String(r.requester),
    createdAt: date(r.created_at),
  };
}

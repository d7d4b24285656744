/**
 * Versioned schema migrations. Each migration runs once, in order, and is recorded in
 * `schema_migrations`. All pending migrations run at open inside ONE transaction, after taking
 * an advisory lock so that several coordinators opening the same PostgreSQL schema at once
 * apply them exactly once. Never edit a migration that has shipped: add a new one.
 *
 * All tables are keyed by federation_id: one database can host several federations.
 */
import type { SqlClient } from './sql.ts';
import { STUDIES_MIGRATION } from './studies.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE federations (
  id            text PRIMARY KEY,
  schema_hash   text NOT NULL,
  schema_json   jsonb NOT NULL,
  config_json   jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
  federation_id text NOT NULL REFERENCES federations(id),
  site_id       text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  agent_version text,
  PRIMARY KEY (federation_id, site_id)
);

CREATE TABLE committee_keys (
  federation_id   text NOT NULL REFERENCES federations(id),
  member_id       text NOT NULL,
  point           integer NOT NULL CHECK (point > 0),
  public_key      bytea NOT NULL,
  signature       bytea NOT NULL,
  certificate_pem text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, member_id),
  UNIQUE (federation_id, point),
  FOREIGN KEY (federation_id, member_id) REFERENCES sites(federation_id, site_id)
);

CREATE TABLE rounds (
  federation_id  text NOT NULL REFERENCES federations(id),
  round_id       text NOT NULL,
  seq            integer NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('keygen', 'measure', 'decrypt')),
  spec_json      jsonb NOT NULL,
  state          text NOT NULL DEFAULT 'open'
                 CHECK (state IN ('open', 'closed', 'decrypting', 'released', 'failed')),
  quorum         integer NOT NULL CHECK (quorum >= 1),
  deadline_at    timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  closed_at      timestamptz,
  failure_reason text,
  PRIMARY KEY (federation_id, round_id),
  UNIQUE (federation_id, seq)
);

CREATE TABLE tasks (
  task_id        text PRIMARY KEY,
  federation_id  text NOT NULL,
  round_id       text NOT NULL,
  site_id        text NOT NULL,
  kind           text NOT NULL,
  spec_json      jsonb NOT NULL,
  payload        bytea,
  payload_sha256 text,
  state          text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'delivered', 'done', 'refused', 'expired')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  delivered_at   timestamptz,
  done_at        timestamptz,
  refusal_reason text,
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id),
  FOREIGN KEY (federation_id, site_id) REFERENCES sites(federation_id, site_id)
);
CREATE INDEX tasks_site_state ON tasks (federation_id, site_id, state);
CREATE INDEX tasks_round ON tasks (federation_id, round_id);

-- Submission bodies are CIPHERTEXTS only (BFV encryptions of Shamir shares).
-- The coordinator never stores, and never can decrypt, a single site's plaintext vector.
CREATE TABLE submissions (
  task_id       text PRIMARY KEY REFERENCES tasks(task_id),
  federation_id text NOT NULL,
  round_id      text NOT NULL,
  site_id       text NOT NULL,
  kind          text NOT NULL,
  body_sha256   text NOT NULL,
  body_bytes    integer NOT NULL,
  body          bytea NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id)
);
CREATE INDEX submissions_round ON submissions (federation_id, round_id);

-- Homomorphic per-member sums of the submissions (still ciphertexts).
CREATE TABLE aggregates (
  federation_id text NOT NULL,
  round_id      text NOT NULL,
  member_id     text NOT NULL,
  point         integer NOT NULL,
  length        integer NOT NULL,
  contributors  jsonb NOT NULL,
  ciphertexts   bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, round_id, member_id),
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id)
);

-- A committee member's decryption of ITS summed share: a Shamir share of the noised total
-- over all contributors, never one site's vector.
CREATE TABLE partials (
  federation_id text NOT NULL,
  round_id      text NOT NULL,
  member_id     text NOT NULL,
  point         integer NOT NULL,
  share         bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, round_id, member_id),
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id)
);

CREATE TABLE measurements (
  federation_id text NOT NULL,
  round_id      text NOT NULL,
  seq           integer NOT NULL,
  attrs         jsonb NOT NULL,
  values_json   jsonb NOT NULL,
  sigma_total   double precision NOT NULL CHECK (sigma_total >= 0),
  released_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, round_id, seq),
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id)
);

CREATE TABLE charges (
  federation_id text NOT NULL,
  round_id      text NOT NULL,
  site_id       text NOT NULL,
  rho           double precision NOT NULL CHECK (rho >= 0 AND rho < 'Infinity'::float8),
  mechanism     jsonb NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, round_id, site_id),
  FOREIGN KEY (federation_id, round_id) REFERENCES rounds(federation_id, round_id),
  FOREIGN KEY (federation_id, site_id) REFERENCES sites(federation_id, site_id)
);

CREATE TABLE models (
  id            text PRIMARY KEY,
  federation_id text NOT NULL REFERENCES federations(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  rho_total     double precision NOT NULL,
  model_json    jsonb NOT NULL
);

CREATE TABLE cohorts (
  id            text PRIMARY KEY,
  federation_id text NOT NULL REFERENCES federations(id),
  model_id      text NOT NULL REFERENCES models(id),
  n             integer NOT NULL CHECK (n >= 0),
  seed          text NOT NULL,
  where_json    jsonb NOT NULL,
  out_dir       text NOT NULL,
  report_json   jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Append-only, hash-chained. hash = sha256_hex(prev_hash || canonicalJson(event)).
CREATE TABLE audit_log (
  federation_id text NOT NULL,
  seq           integer NOT NULL CHECK (seq >= 1),
  prev_hash     text NOT NULL,
  hash          text NOT NULL,
  event_json    jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, seq)
);
`,
  },
  {
    version: 2,
    name: 'signed audit log',
    // The audit log becomes privacy/audit-log/chain.ts entries signed by the coordinator's
    // certificate key. The unsigned v1 chain is kept, renamed, for the record.
    sql: `
ALTER TABLE audit_log RENAME TO audit_log_v1_unsigned;
ALTER INDEX audit_log_pkey RENAME TO audit_log_v1_unsigned_pkey;

-- One row per privacy/audit-log/chain.ts entry. entry_text is the exact JSON line that was signed
-- (its hash and signature are over its canonical form); the other columns index it.
CREATE TABLE audit_log (
  federation_id text NOT NULL,
  seq           integer NOT NULL CHECK (seq >= 0),
  prev_hash     text NOT NULL,
  hash          text NOT NULL,
  party         text NOT NULL,
  event_type    text NOT NULL,
  entry_text    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (federation_id, seq)
);
`,
  },
  STUDIES_MIGRATION,
  {
    version: 4,
    name: 'preflight rounds',
    // A fit asks every site "can you afford this plan?" before round 1 (coordinator/engine.ts):
    // a round of kind preflight, whose tasks charge nothing.
    sql: `
ALTER TABLE rounds DROP CONSTRAINT rounds_kind_check;
ALTER TABLE rounds ADD CONSTRAINT rounds_kind_check CHECK (kind IN ('keygen', 'measure', 'decrypt', 'preflight'));
`,
  },
  {
    version: 5,
    name: 'membership-inference audit rounds',
    // An audited fit asks every site for its noised score histogram after the cohort is drawn
    // (coordinator/audit-rounds.ts): a round of kind mia-histogram, charged at single-party ρ.
    sql: `
ALTER TABLE rounds DROP CONSTRAINT rounds_kind_check;
ALTER TABLE rounds ADD CONSTRAINT rounds_kind_check CHECK (kind IN ('keygen', 'measure', 'decrypt', 'preflight', 'mia-histogram'));
`,
  },
  {
    version: 6,
    name: 'held revocation list',
    // The highest revocation list (cRLNumber) the coordinator accepted, so that a restart with an
    // older list in its file refuses it (proto/revocation.ts). The PEM is CA-signed and verified
    // again when read.
    sql: `
CREATE TABLE revocation_lists (
  federation_id text PRIMARY KEY,
  crl_number    text NOT NULL,
  sha256        text NOT NULL,
  pem           text NOT NULL,
  accepted_at   timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 7,
    name: 'band queries',
    // A measurement of a round with a value map is a linear query over the original domain
    // (model/measurement.ts `coarsen`, e.g. age bins summed into the workload's bands): its map
    // is stored with it, so the estimate and every report read its cells right. NULL: a marginal.
    sql: `
ALTER TABLE measurements ADD COLUMN coarsen_json jsonb;
`,
  },
];

/** Advisory-lock key namespace: the lock is per (purpose, current schema). */
export const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext($1 || ':' || current_schema()))`;

/**
 * Apply pending migrations in one transaction. Idempotent: a second call applies nothing.
 * Returns the versions applied by this call.
 */
export async function migrate(db: SqlClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].version === sorted[i - 1].version) {
      throw new Error(`duplicate migration version ${sorted[i].version}`);
    }
  }
  return db.transaction(async (tx) => {
    await tx.query(LOCK_SQL, ['fedsynth.migrations']);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of sorted) {
      if (done.has(m.version)) continue;
      for (const stmt of splitStatements(m.sql)) await tx.query(stmt);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** Split a migration into statements (our migrations contain no `;` inside literals or bodies). */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) =>
      s
        .split('\n')
        .filter((line) => !line.trim().startsWith('--'))
        .join('\n')
        .trim(),
    )
    .filter((s) => s.length > 0);
}

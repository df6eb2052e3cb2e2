import type { SqlDriver } from './interface.ts';

export interface Migration {
  version: number;
  name: string;
  /** Plain Postgres SQL; several statements allowed. Must also run on PGlite. */
  sql: string;
}

const initial = `
CREATE TABLE sources (
  id                    text PRIMARY KEY,
  name                  text NOT NULL UNIQUE,
  type                  text NOT NULL,
  config                jsonb NOT NULL DEFAULT '{}'::jsonb,
  credentials_encrypted text,
  schedule              jsonb,
  freshness             jsonb,
  status                text NOT NULL DEFAULT 'active',
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_cursors (
  source_id  text PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
  cursor     text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
  id              text PRIMARY KEY,
  source_id       text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  external_id     text NOT NULL,
  title           text NOT NULL,
  url             text,
  path            text,
  mime_type       text,
  owner           text,
  labels          text[] NOT NULL DEFAULT '{}',
  last_modified   timestamptz NOT NULL,
  content_version text,
  content_hash    text,
  acl_hash        text NOT NULL,
  acl             text[] NOT NULL DEFAULT '{}',
  generation      integer NOT NULL DEFAULT 0,
  chunk_count     integer NOT NULL DEFAULT 0,
  status          text NOT NULL,
  error           text,
  indexed_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_run   text,
  UNIQUE (source_id, external_id)
);
-- Pruning after an enumeration: documents of a source not seen by the run.
CREATE INDEX documents_source_seen_idx ON documents (source_id, last_seen_run);
-- Keyset paging within a source (paging over all sources uses the primary key).
CREATE INDEX documents_source_id_idx ON documents (source_id, id);

CREATE TABLE runs (
  id          text PRIMARY KEY,
  source_id   text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  mode        text NOT NULL,
  status      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at  timestamptz,
  finished_at timestamptz,
  error       text,
  stats       jsonb NOT NULL DEFAULT '{}'::jsonb,
  warnings    jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX runs_source_created_idx ON runs (source_id, created_at DESC);
CREATE INDEX runs_created_idx ON runs (created_at DESC);
CREATE INDEX runs_active_idx ON runs (source_id) WHERE status IN ('queued', 'running');

CREATE TABLE source_groups (
  source_id    text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  group_id     text NOT NULL,
  member_email text NOT NULL CHECK (member_email = lower(member_email)),
  PRIMARY KEY (source_id, group_id, member_email)
);
CREATE INDEX source_groups_member_idx ON source_groups (member_email);

-- Vectors as float32 little-endian bytes: a quarter of real[]'s text size on the wire and half of float8.
CREATE TABLE embeddings (
  model      text NOT NULL,
  text_hash  text NOT NULL,
  vector     bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, text_hash)
);

CREATE TABLE audit (
  id           text PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  user_name    text,
  agent        text,
  action       text NOT NULL,
  query        text,
  document_ids text[] NOT NULL DEFAULT '{}',
  request_id   text
);
CREATE INDEX audit_at_idx ON audit (at DESC);
CREATE INDEX audit_user_idx ON audit (lower(user_name), at DESC);
CREATE INDEX audit_agent_idx ON audit (agent, at DESC);

CREATE TABLE agents (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  key_hash   text NOT NULL UNIQUE,
  source_ids text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
`;

const freshness = `
-- Alerts have no foreign key to documents: the indexer hard-deletes document rows and an alert's
-- history must outlive them (the freshness job resolves alerts whose document is gone).
CREATE TABLE alerts (
  id                    text PRIMARY KEY,
  kind                  text NOT NULL,
  source_id             text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  document_id           text,
  -- What the alert is about: the document id, or the source id for index_lag / sync_failing.
  subject               text NOT NULL,
  title                 text NOT NULL,
  url                   text,
  owner                 text,
  last_modified         timestamptz,
  expected_max_age_days integer,
  age_days              integer,
  status                text NOT NULL,
  first_flagged_at      timestamptz NOT NULL,
  last_evaluated_at     timestamptz NOT NULL,
  acknowledged_at       timestamptz,
  acknowledged_by       text,
  ack_note              text,
  snoozed_until         timestamptz,
  resolved_at           timestamptz,
  resolution            text,
  details               jsonb
);
-- At most one live alert per subject; resolved ones are history and may repeat.
CREATE UNIQUE INDEX alerts_live_subject_idx ON alerts (kind, subject) WHERE status <> 'resolved';
CREATE INDEX alerts_source_status_idx ON alerts (source_id, status, first_flagged_at, id);
CREATE INDEX alerts_status_idx ON alerts (status, first_flagged_at, id);
CREATE INDEX alerts_snooze_idx ON alerts (snoozed_until) WHERE status = 'acknowledged' AND snoozed_until IS NOT NULL;

CREATE TABLE alert_events (
  id         text PRIMARY KEY,
  -- Several events can share a timestamp (one evaluation); seq keeps the order they happened in.
  seq        bigint GENERATED ALWAYS AS IDENTITY,
  alert_id   text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  source_id  text NOT NULL,
  type       text NOT NULL,
  at         timestamptz NOT NULL,
  actor      text,
  note       text,
  details    jsonb
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, seq);

-- One row per event to notify; delivered_at is the "already sent" marker that keeps a retry or a
-- restart from sending the same state change twice.
CREATE TABLE alert_outbox (
  event_id        text PRIMARY KEY REFERENCES alert_events(id) ON DELETE CASCADE,
  source_id       text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  delivered_at    timestamptz,
  gave_up_at      timestamptz,
  last_error      text
);
CREATE INDEX alert_outbox_due_idx ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
`;

// The database, not each job runner, guarantees one queued-or-running run per source: run creation
// is an insert that this index turns into "do nothing" while another is active. Duplicates left by
// earlier versions are settled first (the newest stays active).
const oneActiveRun = `
UPDATE runs SET status = 'failed', finished_at = now(), error = 'superseded by a newer run of the same source'
WHERE status IN ('queued', 'running')
  AND id NOT IN (SELECT DISTINCT ON (source_id) id FROM runs WHERE status IN ('queued', 'running')
                 ORDER BY source_id, created_at DESC, id DESC);
DROP INDEX IF EXISTS runs_active_idx;
CREATE UNIQUE INDEX runs_one_active_idx ON runs (source_id) WHERE status IN ('queued', 'running');
`;

// The hash-chained audit trail replaces the first, unchained table (kept, renamed, never written
// again). Records are ordered by seq; audit_chain's one row is the head every writer locks and the
// anchor that retention pruning moves forward.
const auditChain = `
ALTER TABLE audit RENAME TO audit_unchained;
CREATE TABLE audit_log (
  seq          bigint PRIMARY KEY,
  id           text NOT NULL UNIQUE,
  at           timestamptz NOT NULL,
  actor        text,
  agent        text,
  action       text NOT NULL,
  target       text,
  outcome      text NOT NULL,
  query        text,
  document_ids text[] NOT NULL DEFAULT '{}',
  documents    jsonb NOT NULL DEFAULT '[]'::jsonb,
  source_ids   text[] NOT NULL DEFAULT '{}',
  details      jsonb,
  request_id   text,
  prev_id      text,
  prev_hash    text NOT NULL,
  hash         text NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (lower(actor), seq);
CREATE INDEX audit_log_agent_idx ON audit_log (agent, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_documents_idx ON audit_log USING gin (document_ids);
CREATE TABLE audit_chain (
  id          integer PRIMARY KEY CHECK (id = 1),
  head_seq    bigint NOT NULL,
  head_id     text,
  head_hash   text NOT NULL,
  anchor_seq  bigint NOT NULL,
  anchor_id   text,
  anchor_hash text NOT NULL
);
INSERT INTO audit_chain VALUES (1, 0, NULL, repeat('0', 64), 0, NULL, repeat('0', 64));
`;

// Kill switches: a disabled source's documents and quarantined documents are hidden from every
// search and fetch. Quarantine is keyed by the upstream id, not the row, so it outlives a
// document being deleted and re-added by later syncs. Agent keys are revoked (kept, so a revoked
// key is recognised and audited as such) and may expire.
const killSwitches = `
ALTER TABLE sources ADD COLUMN enabled boolean NOT NULL DEFAULT true;
CREATE TABLE document_quarantine (
  source_id   text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  external_id text NOT NULL,
  document_id text NOT NULL,
  reason      text NOT NULL,
  actor       text,
  at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, external_id)
);
ALTER TABLE agents ADD COLUMN expires_at timestamptz;
ALTER TABLE agents ADD COLUMN revoked_at timestamptz;
`;

// Which source groups directly contain which (nested groups), so "why can erin read this" can name
// the chain of groups; visibility itself keeps using the flattened source_groups.
const groupNesting = `
CREATE TABLE source_group_nesting (
  source_id       text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  group_id        text NOT NULL,
  member_group_id text NOT NULL,
  PRIMARY KEY (source_id, group_id, member_group_id)
);
`;

/**
 * Change notifications (issue 14): subscriptions/channels registered with the sources, pending
 * sync requests (at most one per source: a notification during a running sync), per-source
 * notification counters, and on each run the time of the notification it answers.
 */
const notifications = `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS notified_at timestamptz;

CREATE TABLE sync_requests (
  source_id    text PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
  notified_at  timestamptz NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notification_subscriptions (
  id          text PRIMARY KEY,
  source_id   text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  kind        text NOT NULL,
  resource    text NOT NULL,
  external_id text NOT NULL,
  secret_hash text NOT NULL,
  address     text NOT NULL,
  expires_at  timestamptz,
  status      text NOT NULL DEFAULT 'active',
  data        jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  renewed_at  timestamptz,
  UNIQUE (kind, external_id)
);
CREATE INDEX notification_subscriptions_source_idx ON notification_subscriptions (source_id);
-- One live subscription per watched resource, even when two processes create one at once.
CREATE UNIQUE INDEX notification_subscriptions_live_idx ON notification_subscriptions (source_id, kind, resource) WHERE status = 'active';

CREATE TABLE notification_counts (
  source_id        text PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
  accepted         bigint NOT NULL DEFAULT 0,
  rejected         bigint NOT NULL DEFAULT 0,
  last_accepted_at timestamptz,
  last_rejected_at timestamptz
);
`;

// The embedding cache remembers which source and document first wrote each vector, so that deleting
// them (or rewriting a document) takes the vectors of the text they no longer hold with them. Rows
// written before this version have no owner and would stay forever: the cache is emptied instead,
// which costs at most one full re-embedding of each document edited afterwards.
const embeddingOwners = `
DELETE FROM embeddings;
ALTER TABLE embeddings ADD COLUMN source_id text REFERENCES sources(id) ON DELETE CASCADE;
ALTER TABLE embeddings ADD COLUMN document_id text;
CREATE INDEX embeddings_document_idx ON embeddings (document_id);
CREATE INDEX embeddings_source_idx ON embeddings (source_id);
`;

// The embedding cache is a cache: a vector it loses is embedded again, never wrong. Unlogged, its
// writes skip the write-ahead log, which was most of what a sync's cache inserts cost (about 2 KB
// per chunk, written once to the log and once to the table; on PGlite both go through the main
// thread). The price: after a database crash it starts empty, and standbys do not have it.
const embeddingCacheUnlogged = `
ALTER TABLE embeddings SET UNLOGGED;
`;

// Every search appends an audit record naming the documents it returned, each one an entry in this
// GIN index. With GIN's default fast update the entries collect in a pending list that the insert
// which fills it (4 MB, ~7,700 searches) merges into the index: one search then waited ~60 ms on an
// idle machine, and on PGlite, which runs on the API's own thread, every request behind it waited
// too. Without it each insert updates the index itself, a steady ~0.1 ms more.
const auditDocumentsIndexDirect = `
ALTER INDEX audit_log_documents_idx SET (fastupdate = off);
`;

// A cached vector is 2 KB for a 512-d model, which put each row just past PostgreSQL's 2 KB TOAST
// threshold: every insert tried to compress the vector (random floats never shrink) and then moved
// it to the TOAST table, a second heap insert and index entry per row. Rows now stay whole up to a
// page (8 KB: models up to ~1,900 dimensions), and a longer vector goes out of line uncompressed.
// Measured on PGlite, where it runs on the sync's own thread: 1,232 cached vectors 116–148 → 89–96 ms.
const embeddingVectorsInline = `
ALTER TABLE embeddings SET (toast_tuple_target = 8160);
ALTER TABLE embeddings ALTER COLUMN vector SET STORAGE EXTERNAL;
`;

/**
 * Append-only: never edit a migration that has shipped, add the next version instead. Versions
 * must be increasing; each runs at most once per database.
 */
export const migrations: Migration[] = [
  { version: 1, name: 'initial', sql: initial },
  { version: 2, name: 'freshness alerts', sql: freshness },
  { version: 3, name: 'one active run per source', sql: oneActiveRun },
  { version: 10, name: 'hash-chained audit trail', sql: auditChain },
  { version: 11, name: 'kill switches', sql: killSwitches },
  { version: 12, name: 'source group nesting', sql: groupNesting },
  { version: 20, name: 'change notifications', sql: notifications },
  { version: 40, name: 'embedding cache owners', sql: embeddingOwners },
  { version: 41, name: 'embedding cache unlogged', sql: embeddingCacheUnlogged },
  { version: 42, name: 'audit documents index without pending list', sql: auditDocumentsIndexDirect },
  { version: 43, name: 'embedding cache vectors inline', sql: embeddingVectorsInline },
];

/**
 * Applies pending migrations in one transaction. The advisory lock (keyed by schema, so separate
 * schemas in one database don't wait on each other) serialises processes starting at the same
 * time; the loser sees the winner's rows once it gets the lock. On PGlite the lock is a no-op.
 */
export async function migrate(driver: SqlDriver, list: Migration[] = migrations): Promise<number[]> {
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.version <= list[i - 1]!.version) throw new Error('Migrations must have increasing versions');
  }
  return driver.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('clearance.migrate.' || current_schema()))`);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of list) {
      if (done.has(m.version)) continue;
      await tx.query(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

import type { DocumentRecord, FreshnessPolicy, Principal, Run, RunMode, RunStats, Source, SourceType } from '../types.ts';

/**
 * The SQL driver under the metadata store. Both adapters speak the same Postgres dialect, so the
 * store above them has one code path: node-postgres (DATABASE_URL) or PGlite (embedded). The
 * driver is an implementation detail of src/metadata: nothing outside this folder sees it.
 */
export interface SqlDriver {
  readonly kind: 'postgres' | 'pglite';
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs fn inside one transaction; fn's queries go through the driver it is given. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * `COPY table (columns) FROM … (FORMAT binary)` with `data` in PostgreSQL's binary copy format,
   * where the driver can hand bytes to COPY without a stream (PGlite). No ON CONFLICT: a duplicate
   * key fails the whole copy.
   */
  copyBinary?(table: string, columns: string[], data: Uint8Array<ArrayBuffer>): Promise<void>;
}

// ---- Sources ---------------------------------------------------------------------------------

export interface NewSource {
  name: string;
  type: SourceType;
  config: Record<string, unknown>;
  /** Already encrypted (src/metadata/secrets.ts); the store never sees plaintext credentials. */
  credentialsEncrypted: string | null;
  schedule: { intervalSeconds: number } | null;
  freshness: FreshnessPolicy | null;
}

export type SourcePatch = Partial<Omit<NewSource, 'type'>> & { status?: Source['status']; enabled?: boolean };

export interface SourceStore {
  create(input: NewSource): Promise<Source>;
  get(id: string): Promise<Source | null>;
  list(): Promise<Source[]>;
  update(id: string, patch: SourcePatch): Promise<Source | null>;
  /** Removes the source and every row that belongs to it (documents, runs, cursor, groups, alerts). */
  delete(id: string): Promise<void>;
  credentials(id: string): Promise<string | null>;
  cursor(sourceId: string): Promise<string | null>;
  setCursor(sourceId: string, cursor: string | null): Promise<void>;
}

// ---- Documents -------------------------------------------------------------------------------

export type DocumentUpsert = Omit<DocumentRecord, 'id' | 'indexedAt'> & { id?: string };

export interface DocumentStore {
  byExternalId(sourceId: string, externalId: string): Promise<DocumentRecord | null>;
  /** In the order of `ids`; unknown ids are left out. */
  byIds(ids: string[]): Promise<DocumentRecord[]>;
  /** The source's rows for these upstream ids (any status), in one round trip per batch; unknown ids are left out. */
  byExternalIds(sourceId: string, externalIds: string[]): Promise<DocumentRecord[]>;
  /** Inserts or updates by (sourceId, externalId) and marks it seen by `runId`. */
  upsert(doc: DocumentUpsert, runId: string): Promise<DocumentRecord>;
  /** `upsert` for many documents in a few round trips (the last of two writes of one document wins). */
  upsertMany(docs: DocumentUpsert[], runId: string): Promise<void>;
  /** Marks documents as seen by a run without changing them (unchanged documents in an enumeration). */
  touch(sourceId: string, externalIds: string[], runId: string): Promise<void>;
  /** Live documents of the source that the run did not see (for pruning after an enumeration). */
  unseen(sourceId: string, runId: string): Promise<DocumentRecord[]>;
  delete(id: string): Promise<void>;
  /** Pages through live documents by id, so callers never hold a whole source in memory. */
  list(opts: { sourceId?: string; afterId?: string; limit: number }): Promise<DocumentRecord[]>;
  /** Live documents (status other than 'deleted'). */
  count(sourceId?: string): Promise<number>;
}

// ---- Runs ------------------------------------------------------------------------------------

export type RunPatch = Partial<Pick<Run, 'status' | 'startedAt' | 'finishedAt' | 'error' | 'stats' | 'warnings' | 'mode'>>;

export interface RunStore {
  /**
   * A new queued run, or the source's queued/running run when it has one: the database holds at
   * most one active run per source, so two processes asking at once agree on one run.
   */
  start(sourceId: string, mode: RunMode): Promise<{ run: Run; created: boolean }>;
  get(id: string): Promise<Run | null>;
  /** Newest first; limit defaults to 50, at most 1000. */
  list(sourceId: string, limit?: number): Promise<Run[]>;
  update(id: string, patch: RunPatch): Promise<Run | null>;
  /** The queued or running run of a source, if any. */
  active(sourceId: string): Promise<Run | null>;
}

// ---- Source groups ---------------------------------------------------------------------------

/** A source group the user belongs to, and the nested groups that put them there (innermost first). */
export interface GroupMembership {
  principal: Principal;
  via: Principal[];
}

export interface GroupStore {
  /**
   * Transitive memberships of the source's groups, replaced wholesale (one sync's view).
   * `memberGroupIds`, when the connector knows them, are the groups nested directly in this one.
   */
  replace(sourceId: string, groups: { groupId: string; memberEmails: string[]; memberGroupIds?: string[] }[]): Promise<void>;
  /** Every source group containing the email, each with the chain of nested groups leading to it. */
  membershipsOf(email: string | null): Promise<GroupMembership[]>;
  /** Emails of the (transitive) members of one source group. */
  members(sourceId: string, groupId: string): Promise<string[]>;
  /** `sgroup:<sourceId>/<groupId>` for every source group that contains the email (none for null). */
  principalsOf(email: string | null): Promise<Principal[]>;
  /** Ids of the source's groups that currently have at least one member. */
  ids(sourceId: string): Promise<string[]>;
}

// ---- Embedding cache -------------------------------------------------------------------------

export interface EmbeddingCacheEntry {
  textHash: string;
  vector: number[];
  /** The source and document whose text this is; deleting either removes the entry (see `forget`). */
  sourceId: string;
  documentId: string;
}

export interface EmbeddingCache {
  /** Keyed by model and sha256 of the embedded text; vectors come back as float32 values. */
  get(model: string, textHashes: string[]): Promise<Map<string, number[]>>;
  /** An entry that exists keeps its first owner. */
  put(model: string, entries: EmbeddingCacheEntry[]): Promise<void>;
  /**
   * Removes the vectors a document wrote, except for the texts in `keep` (a rewritten document's
   * current chunks), for every model. A text another document shares is then embedded again when
   * that one changes: a cost, never a wrong vector. A deleted source's entries go with its row.
   */
  forget(documentId: string, keep?: string[]): Promise<void>;
}

// ---- Audit -----------------------------------------------------------------------------------

/** A document as an audit record remembers it: what the caller received, by name, at that time. */
export interface AuditDocument {
  id: string;
  title: string | null;
  url: string | null;
  sourceId: string | null;
}

export type AuditOutcome = 'ok' | 'denied' | 'error';

/** What a caller hands to `append`; the store assigns position, id, time and the chain hashes. */
export interface AuditEntry {
  /** Who acted: the caller's email, `admin-token` for the bootstrap token, null when unknown. */
  user: string | null;
  agent: string | null;
  action: string;
  /** What the action was about: a document, source or agent id, or the route of a denied request. */
  target?: string | null;
  outcome?: AuditOutcome;
  query: string | null;
  documentIds: string[];
  /** Titles and URLs of the returned documents, so a reviewer reads names, not ids. */
  documents?: AuditDocument[];
  sourceIds?: string[];
  details?: Record<string, unknown> | null;
  requestId: string | null;
  /** Tests and imports only; the store's clock otherwise. */
  at?: Date;
}

export interface AuditRecord {
  /** Position in the chain: 1, 2, 3… with no gaps (pruning removes a prefix). */
  seq: number;
  id: string;
  at: Date;
  /** The acting user (same as `actor`; kept for clients of the first audit API). */
  user: string | null;
  actor: string | null;
  agent: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  query: string | null;
  documentIds: string[];
  documents: AuditDocument[];
  sourceIds: string[];
  details: Record<string, unknown> | null;
  requestId: string | null;
  prevId: string | null;
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  user?: string;
  agent?: string;
  action?: string;
  documentId?: string;
  sourceId?: string;
  outcome?: AuditOutcome;
  from?: Date;
  to?: Date;
  /** Records with seq below this (paging backwards from the newest). */
  beforeSeq?: number;
  limit?: number;
}

export interface AuditVerification {
  ok: boolean;
  /** Records checked (the whole retained chain). */
  records: number;
  /** The first record that was changed, or whose removal broke the chain. */
  firstBrokenId?: string;
  firstBrokenSeq?: number;
  reason?: string;
}

export interface AuditStore {
  /** Appends one record at the head of the hash chain; concurrent writers (any process) are serialised. */
  append(rec: AuditEntry): Promise<AuditRecord>;
  /** Newest first. `user` matches case-insensitively, `from`/`to` are inclusive; limit 100 by default, at most 1000. */
  search(q: AuditQuery): Promise<AuditRecord[]>;
  /** Walks the retained chain from its anchor and reports the first broken record. */
  verify(): Promise<AuditVerification>;
  /** Deletes records older than `before` from the tail of the chain, moving the anchor so the rest still verifies. */
  prune(before: Date): Promise<number>;
}

// ---- Kill switches ---------------------------------------------------------------------------

export interface Quarantine {
  documentId: string;
  sourceId: string;
  externalId: string;
  reason: string;
  actor: string | null;
  at: Date;
}

export interface KillSwitchStore {
  /** What nobody may see right now: disabled sources and quarantined documents (one round trip, read on every search). */
  hidden(): Promise<{ sourceIds: string[]; documentIds: string[] }>;
  /** Keyed by the document's upstream id, so it holds across later syncs (even a delete and re-add). */
  quarantine(doc: { id: string; sourceId: string; externalId: string }, reason: string, actor: string | null): Promise<Quarantine>;
  /** False when the document was not quarantined. */
  release(documentId: string): Promise<boolean>;
  quarantineOf(documentId: string): Promise<Quarantine | null>;
  quarantined(): Promise<Quarantine[]>;
}

// ---- Agent keys ------------------------------------------------------------------------------

export interface Agent {
  id: string;
  name: string;
  sourceIds: string[];
  createdAt: Date;
  /** After this instant the key is refused. */
  expiresAt: Date | null;
  /** Set once the key is revoked; a revoked key is kept so its use is recognised (and audited) as such. */
  revokedAt: Date | null;
}

export interface AgentStore {
  /** The key itself is never stored, only its sha256. */
  create(name: string, keyHash: string, sourceIds: string[], expiresAt?: Date | null): Promise<Agent>;
  /** Revoked and expired agents included: the caller decides what to refuse and how to record it. */
  byKeyHash(keyHash: string): Promise<Agent | null>;
  get(id: string): Promise<Agent | null>;
  list(): Promise<Agent[]>;
  /** Sets or clears the expiry; null when there is no such agent. */
  setExpiry(id: string, expiresAt: Date | null): Promise<Agent | null>;
  /** Revokes an agent key at once; false when there was no such agent or it was already revoked. */
  delete(id: string): Promise<boolean>;
}

// ---- Change notifications --------------------------------------------------------------------

/** A Graph subscription or a Drive channel registered with a source (state of the lifecycle). */
export interface NotificationSubscription {
  id: string;
  sourceId: string;
  /** 'graph' (Microsoft Graph subscription) or 'drive' (Google Drive changes.watch channel). */
  kind: string;
  /** What is watched: a drive id, `changes` of a shared drive, … */
  resource: string;
  /** The upstream's id: Graph subscription id, Drive channel id. */
  externalId: string;
  /** sha256 (hex) of the clientState / channel token; the secret itself is never stored. */
  secretHash: string;
  /** The notification URL registered upstream. */
  address: string;
  expiresAt: Date | null;
  /** 'active'; 'removed' (upstream dropped it: re-create); 'failed' (creating or renewing failed: retried). */
  status: 'active' | 'removed' | 'failed';
  /** Upstream details needed later (Drive resourceId, …). */
  data: Record<string, unknown>;
  lastError: string | null;
  createdAt: Date;
  renewedAt: Date | null;
}

export interface NotificationCounts {
  accepted: number;
  rejected: number;
  lastAcceptedAt: Date | null;
  lastRejectedAt: Date | null;
}

export interface NotificationStore {
  subscriptions(sourceId?: string): Promise<NotificationSubscription[]>;
  subscriptionByExternalId(kind: string, externalId: string): Promise<NotificationSubscription | null>;
  saveSubscription(sub: Omit<NotificationSubscription, 'createdAt' | 'renewedAt'> & { renewedAt?: Date | null }): Promise<NotificationSubscription>;
  updateSubscription(id: string, patch: Partial<Pick<NotificationSubscription, 'expiresAt' | 'status' | 'lastError' | 'renewedAt' | 'data'>>): Promise<void>;
  deleteSubscription(id: string): Promise<void>;
  /** Records that the source should sync again (keeps the earliest notification time); one row per source. */
  requestSync(sourceId: string, notifiedAt: Date): Promise<void>;
  /** Removes and returns the source's pending request (null when there was none). */
  takeSyncRequest(sourceId: string): Promise<{ notifiedAt: Date } | null>;
  /** Sources with a pending request (start-up recovery). */
  pendingSyncRequests(): Promise<string[]>;
  /** Sets the run's notification time unless it already has an earlier one. */
  markRunNotified(runId: string, notifiedAt: Date): Promise<void>;
  addCounts(sourceId: string, delta: { accepted: number; rejected: number; at: Date }): Promise<void>;
  counts(sourceId: string): Promise<NotificationCounts>;
}

// ---- The store -------------------------------------------------------------------------------

/** Everything the service keeps about sources and what it indexed, by aggregate. */
export interface MetadataStore {
  readonly kind: 'postgres' | 'pglite';
  readonly sources: SourceStore;
  readonly documents: DocumentStore;
  readonly runs: RunStore;
  readonly groups: GroupStore;
  readonly embeddings: EmbeddingCache;
  readonly audit: AuditStore;
  readonly agents: AgentStore;
  readonly switches: KillSwitchStore;
  readonly notifications: NotificationStore;
  /** Applies pending migrations (idempotent, safe to call from several processes at once). */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type { RunStats };

import type { DocumentRecord, FreshnessPolicy, Principal, Run, RunMode, RunStats, Source, SourceType } from '../types.ts';

/**
 * The SQL driver under the metadata store. Both adapters speak the same Postgres dialect, so the
 * store above them has one code path: node-postgres (DATABASE_URL) or PGlite (embedded).
 */
export interface SqlDriver {
  readonly kind: 'postgres' | 'pglite';
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs fn inside one transaction; fn's queries go through the driver it is given. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface NewSource {
  name: string;
  type: SourceType;
  config: Record<string, unknown>;
  /** Already encrypted (src/metadata/secrets.ts); the store never sees plaintext credentials. */
  credentialsEncrypted: string | null;
  schedule: { intervalSeconds: number } | null;
  freshness: FreshnessPolicy | null;
}

export type DocumentUpsert = Omit<DocumentRecord, 'id' | 'indexedAt'> & { id?: string };

export interface AuditRecord {
  id: string;
  at: Date;
  user: string | null;
  agent: string | null;
  action: string;
  query: string | null;
  documentIds: string[];
  requestId: string | null;
}

export interface Agent {
  id: string;
  name: string;
  sourceIds: string[];
  createdAt: Date;
}

export interface MetadataStore {
  readonly driver: SqlDriver;
  /** Applies pending migrations (idempotent, safe to call from several processes at once). */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  // Sources
  createSource(input: NewSource): Promise<Source>;
  getSource(id: string): Promise<Source | null>;
  listSources(): Promise<Source[]>;
  updateSource(id: string, patch: Partial<Omit<NewSource, 'type'>> & { status?: Source['status'] }): Promise<Source | null>;
  /** Removes the source and every row that belongs to it (documents, runs, cursor, groups, alerts). */
  deleteSource(id: string): Promise<void>;
  getSourceCredentials(id: string): Promise<string | null>;
  getCursor(sourceId: string): Promise<string | null>;
  setCursor(sourceId: string, cursor: string | null): Promise<void>;

  // Documents
  getDocument(sourceId: string, externalId: string): Promise<DocumentRecord | null>;
  getDocumentsByIds(ids: string[]): Promise<DocumentRecord[]>;
  /** The source's rows for these upstream ids (any status), in one round trip per batch; unknown ids are left out. */
  getDocumentsByExternalIds(sourceId: string, externalIds: string[]): Promise<DocumentRecord[]>;
  /** Inserts or updates by (sourceId, externalId) and marks it seen by `runId`. */
  upsertDocument(doc: DocumentUpsert, runId: string): Promise<DocumentRecord>;
  /** Marks documents as seen by a run without changing them (unchanged documents in an enumeration). */
  touchDocuments(sourceId: string, externalIds: string[], runId: string): Promise<void>;
  /** Live documents of the source that the run did not see (for pruning after an enumeration). */
  listUnseenDocuments(sourceId: string, runId: string): Promise<DocumentRecord[]>;
  deleteDocument(id: string): Promise<void>;
  /** Pages through live documents by id, so callers never hold a whole source in memory. */
  listDocuments(opts: { sourceId?: string; afterId?: string; limit: number }): Promise<DocumentRecord[]>;
  countDocuments(sourceId?: string): Promise<number>;

  // Runs
  createRun(sourceId: string, mode: RunMode): Promise<Run>;
  getRun(id: string): Promise<Run | null>;
  listRuns(sourceId: string, limit?: number): Promise<Run[]>;
  updateRun(id: string, patch: Partial<Pick<Run, 'status' | 'startedAt' | 'finishedAt' | 'error' | 'stats' | 'warnings' | 'mode'>>): Promise<Run | null>;
  /** The queued or running run of a source, if any. */
  activeRun(sourceId: string): Promise<Run | null>;

  // Source groups (transitive memberships, replaced wholesale on each sync)
  replaceGroups(sourceId: string, groups: { groupId: string; memberEmails: string[] }[]): Promise<void>;
  /** `sgroup:<sourceId>/<groupId>` for every source group that contains the email. */
  sourceGroupPrincipals(email: string): Promise<Principal[]>;
  /** Ids of the source's groups that currently have at least one member. */
  listSourceGroupIds(sourceId: string): Promise<string[]>;

  // Embedding cache, keyed by model and sha256 of the chunk text
  getEmbeddings(model: string, textHashes: string[]): Promise<Map<string, number[]>>;
  putEmbeddings(model: string, entries: { textHash: string; vector: number[] }[]): Promise<void>;

  // Audit
  insertAudit(rec: Omit<AuditRecord, 'id' | 'at'> & { at?: Date }): Promise<void>;
  searchAudit(q: { user?: string; agent?: string; from?: Date; to?: Date; limit?: number }): Promise<AuditRecord[]>;

  // Agent keys (the key itself is never stored, only its sha256)
  createAgent(name: string, keyHash: string, sourceIds: string[]): Promise<Agent>;
  getAgentByKeyHash(keyHash: string): Promise<Agent | null>;
  listAgents(): Promise<Agent[]>;
  /** Revokes an agent key; false when there was no such agent. */
  deleteAgent(id: string): Promise<boolean>;
}

export type { RunStats };

import { randomUUID } from 'node:crypto';
import { conflict } from '../errors.ts';
import {
  emptyStats,
  type DocumentRecord,
  type FreshnessPolicy,
  type Principal,
  type Run,
  type RunMode,
  type Source,
} from '../types.ts';
import type { Agent, AuditRecord, DocumentUpsert, MetadataStore, NewSource, SqlDriver } from './interface.ts';
import { migrate } from './migrations.ts';

type Row = Record<string, unknown>;

/** Keeps statements well under Postgres' 65535-parameter limit and the wire message size sane. */
const BATCH = 1000;

const chunks = <T>(xs: T[], size = BATCH): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
};

// Both drivers already return Date for timestamptz and parsed jsonb; these guard the one code path
// against a driver configured otherwise (e.g. pg type parsers overridden elsewhere in the process).
const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const toDateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : toDate(v));
const toJson = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

function mapSource(r: Row): Source {
  return {
    id: String(r.id),
    name: String(r.name),
    type: r.type as Source['type'],
    config: toJson<Record<string, unknown>>(r.config) ?? {},
    schedule: r.schedule == null ? null : toJson<{ intervalSeconds: number }>(r.schedule),
    freshness: r.freshness == null ? null : toJson<FreshnessPolicy>(r.freshness),
    status: r.status as Source['status'],
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function mapDocument(r: Row): DocumentRecord {
  return {
    id: String(r.id),
    sourceId: String(r.source_id),
    externalId: String(r.external_id),
    title: String(r.title),
    url: str(r.url),
    path: str(r.path),
    mimeType: str(r.mime_type),
    owner: str(r.owner),
    labels: (r.labels as string[] | null) ?? [],
    lastModified: toDate(r.last_modified),
    contentVersion: str(r.content_version),
    contentHash: str(r.content_hash),
    aclHash: String(r.acl_hash),
    acl: (r.acl as string[] | null) ?? [],
    generation: Number(r.generation),
    chunkCount: Number(r.chunk_count),
    status: r.status as DocumentRecord['status'],
    error: str(r.error),
    indexedAt: toDate(r.indexed_at),
  };
}

function mapRun(r: Row): Run {
  return {
    id: String(r.id),
    sourceId: String(r.source_id),
    mode: r.mode as RunMode,
    status: r.status as Run['status'],
    createdAt: toDate(r.created_at),
    startedAt: toDateOrNull(r.started_at),
    finishedAt: toDateOrNull(r.finished_at),
    error: str(r.error),
    // Merged over zeros so counters added to RunStats later read as 0 on old rows.
    stats: { ...emptyStats(), ...(toJson<Partial<Run['stats']>>(r.stats) ?? {}) },
    warnings: toJson<string[]>(r.warnings) ?? [],
  };
}

function mapAudit(r: Row): AuditRecord {
  return {
    id: String(r.id),
    at: toDate(r.at),
    user: str(r.user_name),
    agent: str(r.agent),
    action: String(r.action),
    query: str(r.query),
    documentIds: (r.document_ids as string[] | null) ?? [],
    requestId: str(r.request_id),
  };
}

function mapAgent(r: Row): Agent {
  return {
    id: String(r.id),
    name: String(r.name),
    sourceIds: (r.source_ids as string[] | null) ?? [],
    createdAt: toDate(r.created_at),
  };
}

/** float32 little-endian, the layout of the `embeddings.vector` column. */
export function encodeVector(v: number[]): Buffer {
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf;
}

export function decodeVector(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(bytes.byteLength >>> 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

const isUniqueViolation = (err: unknown, constraint: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505' &&
  ((err as { constraint?: string }).constraint === constraint ||
    String((err as { message?: string }).message ?? '').includes(constraint));

const DOC_COLUMNS = [
  'id', 'source_id', 'external_id', 'title', 'url', 'path', 'mime_type', 'owner', 'labels', 'last_modified',
  'content_version', 'content_hash', 'acl_hash', 'acl', 'generation', 'chunk_count', 'status', 'error',
  'last_seen_run',
] as const;
const DOC_UPDATABLE = DOC_COLUMNS.filter((c) => c !== 'id' && c !== 'source_id' && c !== 'external_id');

const UPSERT_DOCUMENT = `
  INSERT INTO documents (${DOC_COLUMNS.join(', ')}, indexed_at)
  VALUES (${DOC_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}, now())
  ON CONFLICT (source_id, external_id) DO UPDATE SET
    ${DOC_UPDATABLE.map((c) => `${c} = EXCLUDED.${c}`).join(',\n    ')},
    indexed_at = now()
  RETURNING *`;

/** The metadata store over either SQL driver; both speak the same dialect, so there is one code path. */
export class SqlMetadataStore implements MetadataStore {
  constructor(readonly driver: SqlDriver) {}

  async migrate(): Promise<void> {
    await migrate(this.driver);
  }

  async ping(): Promise<void> {
    await this.driver.query('SELECT 1 AS ok', []);
  }

  close(): Promise<void> {
    return this.driver.close();
  }

  // ---- Sources -------------------------------------------------------------------------------

  async createSource(input: NewSource): Promise<Source> {
    try {
      const rows = await this.driver.query(
        `INSERT INTO sources (id, name, type, config, credentials_encrypted, schedule, freshness)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [randomUUID(), input.name, input.type, JSON.stringify(input.config ?? {}), input.credentialsEncrypted,
          json(input.schedule), json(input.freshness)],
      );
      return mapSource(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, 'sources_name_key')) throw conflict(`A source named "${input.name}" already exists`);
      throw err;
    }
  }

  async getSource(id: string): Promise<Source | null> {
    const rows = await this.driver.query('SELECT * FROM sources WHERE id = $1', [id]);
    return rows[0] ? mapSource(rows[0]) : null;
  }

  async listSources(): Promise<Source[]> {
    const rows = await this.driver.query('SELECT * FROM sources ORDER BY created_at, id', []);
    return rows.map(mapSource);
  }

  async updateSource(
    id: string,
    patch: Partial<Omit<NewSource, 'type'>> & { status?: Source['status'] },
  ): Promise<Source | null> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.name !== undefined) set('name', patch.name);
    if (patch.config !== undefined) set('config', JSON.stringify(patch.config));
    if (patch.credentialsEncrypted !== undefined) set('credentials_encrypted', patch.credentialsEncrypted);
    if (patch.schedule !== undefined) set('schedule', json(patch.schedule));
    if (patch.freshness !== undefined) set('freshness', json(patch.freshness));
    if (patch.status !== undefined) set('status', patch.status);
    sets.push('updated_at = now()');
    try {
      const rows = await this.driver.query(`UPDATE sources SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
      return rows[0] ? mapSource(rows[0]) : null;
    } catch (err) {
      if (isUniqueViolation(err, 'sources_name_key')) throw conflict(`A source named "${patch.name}" already exists`);
      throw err;
    }
  }

  async deleteSource(id: string): Promise<void> {
    // Documents, runs, cursor, groups (and later tables keyed by source) go with it via ON DELETE CASCADE.
    await this.driver.query('DELETE FROM sources WHERE id = $1', [id]);
  }

  async getSourceCredentials(id: string): Promise<string | null> {
    const rows = await this.driver.query<{ credentials_encrypted: string | null }>(
      'SELECT credentials_encrypted FROM sources WHERE id = $1', [id]);
    return rows[0]?.credentials_encrypted ?? null;
  }

  async getCursor(sourceId: string): Promise<string | null> {
    const rows = await this.driver.query<{ cursor: string }>('SELECT cursor FROM sync_cursors WHERE source_id = $1', [sourceId]);
    return rows[0]?.cursor ?? null;
  }

  async setCursor(sourceId: string, cursor: string | null): Promise<void> {
    if (cursor === null) {
      await this.driver.query('DELETE FROM sync_cursors WHERE source_id = $1', [sourceId]);
      return;
    }
    await this.driver.query(
      `INSERT INTO sync_cursors (source_id, cursor, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (source_id) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`,
      [sourceId, cursor],
    );
  }

  // ---- Documents -----------------------------------------------------------------------------

  async getDocument(sourceId: string, externalId: string): Promise<DocumentRecord | null> {
    const rows = await this.driver.query('SELECT * FROM documents WHERE source_id = $1 AND external_id = $2', [sourceId, externalId]);
    return rows[0] ? mapDocument(rows[0]) : null;
  }

  /** In the order of `ids`; unknown ids are left out. */
  async getDocumentsByIds(ids: string[]): Promise<DocumentRecord[]> {
    if (ids.length === 0) return [];
    const byId = new Map<string, DocumentRecord>();
    for (const batch of chunks([...new Set(ids)])) {
      const rows = await this.driver.query('SELECT * FROM documents WHERE id = ANY($1)', [batch]);
      for (const r of rows) byId.set(String(r.id), mapDocument(r));
    }
    return ids.map((id) => byId.get(id)).filter((d): d is DocumentRecord => d !== undefined);
  }

  async getDocumentsByExternalIds(sourceId: string, externalIds: string[]): Promise<DocumentRecord[]> {
    const out: DocumentRecord[] = [];
    for (const batch of chunks([...new Set(externalIds)])) {
      const rows = await this.driver.query('SELECT * FROM documents WHERE source_id = $1 AND external_id = ANY($2)', [sourceId, batch]);
      out.push(...rows.map(mapDocument));
    }
    return out;
  }

  async upsertDocument(doc: DocumentUpsert, runId: string): Promise<DocumentRecord> {
    const rows = await this.driver.query(UPSERT_DOCUMENT, [
      doc.id ?? randomUUID(), doc.sourceId, doc.externalId, doc.title, doc.url, doc.path, doc.mimeType, doc.owner,
      doc.labels ?? [], iso(doc.lastModified), doc.contentVersion, doc.contentHash, doc.aclHash, doc.acl ?? [],
      doc.generation, doc.chunkCount, doc.status, doc.error, runId,
    ]);
    return mapDocument(rows[0]!);
  }

  async touchDocuments(sourceId: string, externalIds: string[], runId: string): Promise<void> {
    for (const batch of chunks(externalIds, 5000)) {
      await this.driver.query(
        'UPDATE documents SET last_seen_run = $3 WHERE source_id = $1 AND external_id = ANY($2)',
        [sourceId, batch, runId],
      );
    }
  }

  async listUnseenDocuments(sourceId: string, runId: string): Promise<DocumentRecord[]> {
    const rows = await this.driver.query(
      `SELECT * FROM documents
       WHERE source_id = $1 AND last_seen_run IS DISTINCT FROM $2 AND status <> 'deleted'
       ORDER BY id`,
      [sourceId, runId],
    );
    return rows.map(mapDocument);
  }

  async deleteDocument(id: string): Promise<void> {
    await this.driver.query('DELETE FROM documents WHERE id = $1', [id]);
  }

  async listDocuments(opts: { sourceId?: string; afterId?: string; limit: number }): Promise<DocumentRecord[]> {
    const where = [`status <> 'deleted'`];
    const params: unknown[] = [];
    if (opts.sourceId !== undefined) {
      params.push(opts.sourceId);
      where.push(`source_id = $${params.length}`);
    }
    if (opts.afterId !== undefined) {
      params.push(opts.afterId);
      where.push(`id > $${params.length}`);
    }
    params.push(Math.max(0, Math.floor(opts.limit)));
    const rows = await this.driver.query(
      `SELECT * FROM documents WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${params.length}`, params);
    return rows.map(mapDocument);
  }

  /** Live documents (status other than 'deleted'), like listDocuments. */
  async countDocuments(sourceId?: string): Promise<number> {
    const rows = sourceId === undefined
      ? await this.driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM documents WHERE status <> 'deleted'`, [])
      : await this.driver.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM documents WHERE source_id = $1 AND status <> 'deleted'`, [sourceId]);
    return Number(rows[0]?.n ?? 0);
  }

  // ---- Runs ----------------------------------------------------------------------------------

  async createRun(sourceId: string, mode: RunMode): Promise<Run> {
    const rows = await this.driver.query(
      `INSERT INTO runs (id, source_id, mode, status, stats, warnings)
       VALUES ($1, $2, $3, 'queued', $4, '[]'::jsonb) RETURNING *`,
      [randomUUID(), sourceId, mode, JSON.stringify(emptyStats())],
    );
    return mapRun(rows[0]!);
  }

  async getRun(id: string): Promise<Run | null> {
    const rows = await this.driver.query('SELECT * FROM runs WHERE id = $1', [id]);
    return rows[0] ? mapRun(rows[0]) : null;
  }

  /** Newest first; limit defaults to 50, at most 1000. */
  async listRuns(sourceId: string, limit = 50): Promise<Run[]> {
    const n = Math.min(1000, Math.max(1, Math.floor(limit)));
    const rows = await this.driver.query(
      'SELECT * FROM runs WHERE source_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2', [sourceId, n]);
    return rows.map(mapRun);
  }

  async updateRun(
    id: string,
    patch: Partial<Pick<Run, 'status' | 'startedAt' | 'finishedAt' | 'error' | 'stats' | 'warnings' | 'mode'>>,
  ): Promise<Run | null> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.status !== undefined) set('status', patch.status);
    if (patch.mode !== undefined) set('mode', patch.mode);
    if (patch.startedAt !== undefined) set('started_at', iso(patch.startedAt));
    if (patch.finishedAt !== undefined) set('finished_at', iso(patch.finishedAt));
    if (patch.error !== undefined) set('error', patch.error);
    if (patch.stats !== undefined) set('stats', JSON.stringify(patch.stats));
    if (patch.warnings !== undefined) set('warnings', JSON.stringify(patch.warnings));
    if (sets.length === 0) return this.getRun(id);
    const rows = await this.driver.query(`UPDATE runs SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
    return rows[0] ? mapRun(rows[0]) : null;
  }

  async activeRun(sourceId: string): Promise<Run | null> {
    const rows = await this.driver.query(
      `SELECT * FROM runs WHERE source_id = $1 AND status IN ('queued', 'running')
       ORDER BY created_at DESC, id DESC LIMIT 1`,
      [sourceId],
    );
    return rows[0] ? mapRun(rows[0]) : null;
  }

  // ---- Source groups -------------------------------------------------------------------------

  async replaceGroups(sourceId: string, groups: { groupId: string; memberEmails: string[] }[]): Promise<void> {
    const pairs = new Map<string, [string, string]>();
    for (const g of groups) {
      for (const email of g.memberEmails) {
        const e = email.trim().toLowerCase();
        if (e) pairs.set(`${g.groupId}\u0000${e}`, [g.groupId, e]);
      }
    }
    const rows = [...pairs.values()];
    await this.driver.transaction(async (tx) => {
      await tx.query('DELETE FROM source_groups WHERE source_id = $1', [sourceId]);
      for (const batch of chunks(rows, 5000)) {
        await tx.query(
          `INSERT INTO source_groups (source_id, group_id, member_email)
           SELECT $1, g, m FROM unnest($2::text[], $3::text[]) AS t(g, m)`,
          [sourceId, batch.map((r) => r[0]), batch.map((r) => r[1])],
        );
      }
    });
  }

  async sourceGroupPrincipals(email: string): Promise<Principal[]> {
    const rows = await this.driver.query<{ source_id: string; group_id: string }>(
      `SELECT DISTINCT source_id, group_id FROM source_groups WHERE member_email = $1 ORDER BY source_id, group_id`,
      [email.trim().toLowerCase()],
    );
    return rows.map((r) => `sgroup:${r.source_id}/${r.group_id}`);
  }

  async listSourceGroupIds(sourceId: string): Promise<string[]> {
    const rows = await this.driver.query<{ group_id: string }>(
      'SELECT DISTINCT group_id FROM source_groups WHERE source_id = $1 ORDER BY group_id', [sourceId]);
    return rows.map((r) => r.group_id);
  }

  // ---- Embedding cache -----------------------------------------------------------------------

  /** Vectors come back as float32 values (what was stored, rounded to float32). */
  async getEmbeddings(model: string, textHashes: string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const batch of chunks([...new Set(textHashes)])) {
      const rows = await this.driver.query<{ text_hash: string; vector: Uint8Array }>(
        'SELECT text_hash, vector FROM embeddings WHERE model = $1 AND text_hash = ANY($2)', [model, batch]);
      for (const r of rows) out.set(r.text_hash, decodeVector(r.vector));
    }
    return out;
  }

  async putEmbeddings(model: string, entries: { textHash: string; vector: number[] }[]): Promise<void> {
    // Two parameters per row; bytea arrays are not portable across the two drivers' serialisers.
    for (const batch of chunks(entries, 500)) {
      const params: unknown[] = [model];
      const values = batch.map((e) => {
        params.push(e.textHash, encodeVector(e.vector));
        return `($1, $${params.length - 1}, $${params.length})`;
      });
      await this.driver.query(
        `INSERT INTO embeddings (model, text_hash, vector) VALUES ${values.join(', ')}
         ON CONFLICT (model, text_hash) DO NOTHING`,
        params,
      );
    }
  }

  // ---- Audit ---------------------------------------------------------------------------------

  async insertAudit(rec: Omit<AuditRecord, 'id' | 'at'> & { at?: Date }): Promise<void> {
    await this.driver.query(
      `INSERT INTO audit (id, at, user_name, agent, action, query, document_ids, request_id)
       VALUES ($1, COALESCE($2::timestamptz, now()), $3, $4, $5, $6, $7, $8)`,
      [randomUUID(), iso(rec.at), rec.user, rec.agent, rec.action, rec.query, rec.documentIds ?? [], rec.requestId],
    );
  }

  /** Newest first. `user` matches case-insensitively, `from`/`to` are inclusive; limit 100 by default, at most 1000. */
  async searchAudit(q: { user?: string; agent?: string; from?: Date; to?: Date; limit?: number }): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (cond: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(cond(`$${params.length}`));
    };
    if (q.user) add((p) => `lower(user_name) = lower(${p})`, q.user);
    if (q.agent) add((p) => `agent = ${p}`, q.agent);
    if (q.from) add((p) => `at >= ${p}::timestamptz`, iso(q.from));
    if (q.to) add((p) => `at <= ${p}::timestamptz`, iso(q.to));
    params.push(Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100))));
    const rows = await this.driver.query(
      `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(mapAudit);
  }

  // ---- Agents --------------------------------------------------------------------------------

  async createAgent(name: string, keyHash: string, sourceIds: string[]): Promise<Agent> {
    try {
      const rows = await this.driver.query(
        'INSERT INTO agents (id, name, key_hash, source_ids) VALUES ($1, $2, $3, $4) RETURNING *',
        [randomUUID(), name, keyHash, sourceIds],
      );
      return mapAgent(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, 'agents_key_hash_key')) throw conflict('An agent with this key already exists');
      throw err;
    }
  }

  async getAgentByKeyHash(keyHash: string): Promise<Agent | null> {
    const rows = await this.driver.query('SELECT * FROM agents WHERE key_hash = $1', [keyHash]);
    return rows[0] ? mapAgent(rows[0]) : null;
  }

  async listAgents(): Promise<Agent[]> {
    const rows = await this.driver.query('SELECT * FROM agents ORDER BY created_at, id', []);
    return rows.map(mapAgent);
  }

  async deleteAgent(id: string): Promise<boolean> {
    const rows = await this.driver.query('DELETE FROM agents WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }
}

import fs from 'node:fs/promises';
import * as lancedb from '@lancedb/lancedb';
import * as arrow from 'apache-arrow';
import type { PermissionFilter, Principal } from '../access/index.ts';
import type { ChunkPoint, VectorHit, VectorStore } from './interface.ts';
import { lancePermissionPredicate, sqlList, sqlString } from './lancedb-filter.ts';
import {
  backfillKeywordTerms, ensureKeywordIndex, keywordLimit, keywordQuery, keywordRow, KEYWORD_COLUMNS, KEYWORD_REINDEX_ROWS, unindexedKeywordRows,
} from './lancedb-keyword.ts';
import { PurgeScheduler, purgeTable, rowCounts, type PurgeReport } from './lancedb-purge.ts';
import { assertStrings, assertVector, dedupeById, limitOf, preparePoint } from './points.ts';

export { lancePermissionPredicate, sqlString } from './lancedb-filter.ts';

function tableSchema(dimension: number): arrow.Schema {
  const strList = () => new arrow.List(new arrow.Field('item', new arrow.Utf8(), true));
  return new arrow.Schema([
    new arrow.Field('id', new arrow.Utf8(), false),
    new arrow.Field('vector', new arrow.FixedSizeList(dimension, new arrow.Field('item', new arrow.Float32(), true)), false),
    new arrow.Field('documentId', new arrow.Utf8(), false),
    new arrow.Field('sourceId', new arrow.Utf8(), false),
    // Float64 rather than Int64 so JS numbers round-trip without BigInt; exact up to 2^53.
    new arrow.Field('generation', new arrow.Float64(), false),
    new arrow.Field('chunkIndex', new arrow.Int32(), false),
    new arrow.Field('sectionPath', strList(), false),
    new arrow.Field('text', new arrow.Utf8(), false),
    new arrow.Field('lastModified', new arrow.Float64(), false),
    new arrow.Field('acl', strList(), false),
    ...KEYWORD_COLUMNS(),
  ]);
}

const RESULT_COLUMNS = ['id', 'documentId', 'sourceId', 'generation', 'chunkIndex', 'sectionPath', 'text', 'context', 'lastModified', 'acl'];
/** Columns earlier versions stored in every chunk; the registry is their only home now. */
const LEGACY_COLUMNS = ['title', 'url', 'sourceType'];

// Arrow list cells arrive as arrow Vectors; copy them out so callers get plain arrays.
const toStrings = (v: unknown): string[] => (v == null ? [] : Array.from(v as Iterable<string>, String));

function rowToHit(row: Record<string, unknown>, score = 1 - Number(row._distance)): VectorHit {
  return {
    point: {
      id: String(row.id),
      documentId: String(row.documentId),
      sourceId: String(row.sourceId),
      generation: Number(row.generation),
      chunkIndex: Number(row.chunkIndex),
      sectionPath: toStrings(row.sectionPath),
      text: String(row.text),
      ...(typeof row.context === 'string' ? { context: row.context } : {}),
      lastModified: Number(row.lastModified),
      acl: toStrings(row.acl),
    },
    score,
  };
}

// LanceDB may hand back schema objects from its own copy of apache-arrow, so no instanceof here.
function vectorDimension(schema: { fields: { name: string; type: unknown }[] }): number | undefined {
  const type = schema.fields.find((f) => f.name === 'vector')?.type as { typeId?: number; listSize?: number } | undefined;
  return type?.typeId === arrow.Type.FixedSizeList ? type.listSize : undefined;
}

export interface LanceDbOptions {
  dir: string;
  table?: string;
  /** Compact fragments and prune old versions after this many writes (each write adds a fragment). */
  optimizeEvery?: number;
  /**
   * Row count from which the housekeeping step adds a label-list index on `acl`. Measured at 50k
   * 384-d chunks: filtered search 56 ms → 30 ms. Below a few thousand rows a scan is as fast.
   */
  aclIndexFromRows?: number;
  /** Deleted rows leave the disk within about delay + grace (see lancedb-purge.ts). Defaults: 30 s, 30 s. */
  purgeDelayMs?: number;
  purgeGraceMs?: number;
}

/** Embedded vector store: one LanceDB table in a local directory, cosine distance, exact (flat) search. */
export class LanceDbVectorStore implements VectorStore {
  readonly kind = 'lancedb';
  private readonly dir: string;
  private readonly tableName: string;
  private readonly optimizeEvery: number;
  private readonly aclIndexFromRows: number;
  private aclIndexed = false;
  private conn: lancedb.Connection | undefined;
  private table: lancedb.Table | undefined;
  private dimension: number | undefined;
  private writesSinceOptimize = 0;
  /** LanceDB commits optimistically; concurrent writers on one table conflict, so this process queues its writes. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private readonly purgeGraceMs: number;
  private readonly purger: PurgeScheduler;

  constructor(opts: LanceDbOptions) {
    this.dir = opts.dir;
    this.purgeGraceMs = opts.purgeGraceMs ?? 30_000;
    this.purger = new PurgeScheduler(() => this.purge(), { delayMs: opts.purgeDelayMs ?? 30_000, graceMs: this.purgeGraceMs });
    this.tableName = opts.table ?? 'chunks';
    this.optimizeEvery = opts.optimizeEvery ?? 200;
    this.aclIndexFromRows = opts.aclIndexFromRows ?? 20_000;
  }

  async init(dimension: number): Promise<void> {
    if (!Number.isSafeInteger(dimension) || dimension <= 0) throw new RangeError(`Invalid vector dimension ${dimension}`);
    if (this.table) {
      if (this.dimension !== dimension) throw this.dimensionError(this.dimension, dimension);
      return;
    }
    await fs.mkdir(this.dir, { recursive: true });
    // Interval 0: every read sees writes made by other processes (API and worker may be separate),
    // so a revoked permission is honoured as soon as the worker commits it.
    const conn = await lancedb.connect(this.dir, { readConsistencyInterval: 0 });
    const names = await conn.tableNames();
    const table = names.includes(this.tableName)
      ? await conn.openTable(this.tableName)
      : await conn.createEmptyTable(this.tableName, tableSchema(dimension), { mode: 'create', existOk: true });
    const existing = vectorDimension(await table.schema());
    if (existing !== dimension) {
      table.close();
      conn.close();
      throw this.dimensionError(existing, dimension);
    }
    const legacy = (await table.schema()).fields.map((f) => f.name).filter((n) => LEGACY_COLUMNS.includes(n));
    if (legacy.length) await table.dropColumns(legacy);
    // Tables written before the keyword channel gain it here, from the stored text: nothing is re-embedded.
    await backfillKeywordTerms(table);
    await ensureKeywordIndex(table);
    this.conn = conn;
    this.table = table;
    this.dimension = dimension;
    // Deletes an earlier process made but did not live to purge.
    const rows = await rowCounts(table);
    if (rows.physical > rows.live) this.purger.schedule();
  }

  /** One purge pass now: deleted rows' text and vectors leave the data files (see lancedb-purge.ts). */
  purge(): Promise<PurgeReport> {
    return purgeTable(this.requireTable(), (fn) => this.write(fn), { graceMs: this.purgeGraceMs });
  }

  /** What the last purge pass did (for tests and diagnostics). */
  get lastPurge(): PurgeReport | undefined {
    return this.purger.lastReport;
  }

  /** Resolves when no purge pass is pending or running. */
  purgeSettled(): Promise<void> {
    return this.purger.idle();
  }

  private dimensionError(existing: number | undefined, wanted: number): Error {
    return new Error(`LanceDB table "${this.tableName}" in ${this.dir} holds vectors of size ${existing ?? 'unknown'}, ` +
      `but the embedder produces ${wanted}; point CLEARANCE_DATA_DIR elsewhere or remove the table to re-index`);
  }

  private requireTable(): lancedb.Table {
    if (!this.table) throw new Error('LanceDbVectorStore not initialised: call init(dimension) first');
    return this.table;
  }

  private write<T>(fn: (table: lancedb.Table) => Promise<T>): Promise<T> {
    const table = this.requireTable();
    const run = this.writeQueue.then(async () => {
      const result = await fn(table);
      if (++this.writesSinceOptimize >= this.optimizeEvery || (await this.keywordIndexBehind(table))) {
        this.writesSinceOptimize = 0;
        // Housekeeping: its failure must not fail the write that happened to trigger it.
        await this.housekeep(table).catch(() => undefined);
      }
      return result;
    });
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /** True when so many rows are missing from the full-text index that keyword queries would scan them (see lancedb-keyword.ts). */
  private async keywordIndexBehind(table: lancedb.Table): Promise<boolean> {
    return (await unindexedKeywordRows(table).catch(() => 0)) >= KEYWORD_REINDEX_ROWS;
  }

  /** Compacts fragments, prunes old versions, brings indexes up to date and adds the ACL index once worthwhile. */
  private async housekeep(table: lancedb.Table): Promise<void> {
    if (!this.aclIndexed) {
      const indices = await table.listIndices();
      this.aclIndexed = indices.some((i) => i.columns.includes('acl'));
      if (!this.aclIndexed && (await table.countRows()) >= this.aclIndexFromRows) {
        await table.createIndex('acl', { config: lancedb.Index.labelList() });
        this.aclIndexed = true;
      }
    }
    // Readers only hold a version for one query, so versions older than a few minutes are garbage.
    await table.optimize({ cleanupOlderThan: new Date(Date.now() - 5 * 60_000) });
  }

  async upsert(points: ChunkPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = dedupeById(points.map((p) => preparePoint(p, this.dimension))).map(keywordRow);
    await this.write((t) => t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows as unknown as Record<string, unknown>[]));
  }

  async deleteDocument(documentId: string, opts?: { keepGeneration?: number }): Promise<void> {
    let predicate = `documentId = ${sqlString(documentId)}`;
    const keep = opts?.keepGeneration;
    if (keep !== undefined) {
      if (!Number.isSafeInteger(keep)) throw new TypeError('keepGeneration must be an integer');
      predicate += ` AND generation <> ${keep}`;
    }
    await this.write((t) => t.delete(predicate));
    this.purger.schedule();
  }

  async deleteSource(sourceId: string): Promise<void> {
    await this.write((t) => t.delete(`sourceId = ${sqlString(sourceId)}`));
    this.purger.schedule();
  }

  async setDocumentAcl(documentId: string, acl: Principal[]): Promise<void> {
    assertStrings(acl, 'acl');
    // `[]` alone has no element type and fails to plan; an explicit cast gives the column's type.
    const value = acl.length ? `make_array(${sqlList(acl)})` : `arrow_cast([], 'List(Utf8)')`;
    await this.write((t) => t.update({ where: `documentId = ${sqlString(documentId)}`, valuesSql: { acl: value } }));
  }

  async search(vector: number[], filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    const table = this.requireTable();
    assertVector(vector, this.dimension, 'query vector');
    const where = lancePermissionPredicate(filter);
    const limit = limitOf(topK);
    if (where === null || limit === 0) return [];
    const rows = await table
      .vectorSearch(vector)
      .distanceType('cosine')
      .where(where)
      // Exact search: with an ANN index a filtered query could miss visible chunks.
      .bypassVectorIndex()
      .select([...RESULT_COLUMNS, '_distance'])
      .limit(limit)
      .toArray();
    return (rows as Record<string, unknown>[]).map((r) => rowToHit(r));
  }

  async keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    const table = this.requireTable();
    if (typeof query !== 'string') throw new TypeError('query must be a string');
    const where = lancePermissionPredicate(filter);
    const match = keywordQuery(query);
    const limit = limitOf(topK);
    if (where === null || match === null || limit === 0) return [];
    // `where` prefilters (LanceDB's default for full-text search), so `limit` counts visible chunks only.
    const unindexed = await unindexedKeywordRows(table);
    const rows = await table.query().fullTextSearch(match).where(where).select([...RESULT_COLUMNS, '_score'])
      .limit(keywordLimit(limit, unindexed)).toArray() as Record<string, unknown>[];
    return rows.map((r) => rowToHit(r, Number(r._score)))
      .sort((a, b) => b.score - a.score || (a.point.id < b.point.id ? -1 : 1))
      .slice(0, limit);
  }

  async count(filter?: { sourceId?: string; documentId?: string }): Promise<number> {
    const parts: string[] = [];
    if (filter?.sourceId !== undefined) parts.push(`sourceId = ${sqlString(filter.sourceId)}`);
    if (filter?.documentId !== undefined) parts.push(`documentId = ${sqlString(filter.documentId)}`);
    return this.requireTable().countRows(parts.length ? parts.join(' AND ') : undefined);
  }

  async ping(): Promise<void> {
    await this.requireTable().countRows();
  }

  async close(): Promise<void> {
    await this.purger.close();
    await this.writeQueue;
    this.table?.close();
    this.conn?.close();
    this.table = undefined;
    this.conn = undefined;
  }
}

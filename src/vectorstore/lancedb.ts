import fs from 'node:fs/promises';
import * as lancedb from '@lancedb/lancedb';
import * as arrow from 'apache-arrow';
import type { PermissionFilter, Principal } from '../access/index.ts';
import type { ChunkPoint, RankedHit, VectorHit, VectorStore } from './interface.ts';
import { lancePermissionPredicate, sqlList, sqlString } from './lancedb-filter.ts';
import { DEFAULT_LANCE_INDEX_SETTINGS, parseVectorIndexName, partitionsFor, planIndexWork, readIndexState, runIndexWork, type IndexWorkReport, type LanceIndexSettings } from './lancedb-index.ts';
import {
  backfillKeywordTerms, ensureKeywordIndex, keywordLimit, keywordQuery, keywordRow, KEYWORD_COLUMNS, keywordReindexDue, unindexedKeywordRows,
} from './lancedb-keyword.ts';
import { orderByAcl, type LayoutReport } from './lancedb-layout.ts';
import { PurgeScheduler, purgeTable, rowCounts, type PurgeReport } from './lancedb-purge.ts';
import { hitsFromArrow, RANKING_COLUMNS, rankedHitsFromArrow, RESULT_COLUMNS, rowsToArrow, type ScoreColumn } from './lancedb-rows.ts';
import { planLanceSearch, VisibleRowsCache, type LanceSearchPlan, type VectorIndexInfo } from './plan.ts';
import { assertStrings, assertVector, checkPoint, dedupeById, limitOf, ownArrays } from './points.ts';

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

/**
 * The live table's columns (their order and nullability) with this module's Arrow types: LanceDB
 * hands back schema objects of its own Arrow copy, which this copy's builders cannot read. Undefined
 * when the table has a column this version does not write, or another type for one it does.
 */
function writeSchema(live: { fields: { name: string; nullable: boolean; type: unknown }[] }, own: arrow.Schema): arrow.Schema | undefined {
  const fields: arrow.Field[] = [];
  for (const f of live.fields) {
    const mine = own.fields.find((o) => o.name === f.name);
    if (!mine || String(mine.type) !== String(f.type)) return undefined;
    fields.push(new arrow.Field(f.name, mine.type, f.nullable));
  }
  return fields.length === own.fields.length ? new arrow.Schema(fields) : undefined;
}

/** Columns earlier versions stored in every chunk; the registry is their only home now. */
const LEGACY_COLUMNS = ['title', 'url', 'sourceType'];

/** A ranked point with the row id its store noted on it (see LanceDbVectorStore.rowKey). */
type Located = { [rowKey: symbol]: bigint | undefined };

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
   * Row count from which the scalar indexes (`acl` label list, `sourceId`, `documentId`) are built.
   * Measured at 50k 384-d chunks: filtered search 56 ms → 30 ms. Below a few thousand rows a scan is as fast.
   */
  aclIndexFromRows?: number;
  /** The approximate vector index and the search plan (see lancedb-index.ts and plan.ts). */
  index?: Partial<LanceIndexSettings>;
  /** How often, at most, writes look at whether the indexes need work (ms). */
  indexCheckIntervalMs?: number;
  /** Told about index work done or failed in the background (the store itself never logs). */
  onIndexEvent?: (event: { ok: true; report: IndexWorkReport } | { ok: false; error: unknown }) => void;
  /** Deleted rows leave the disk within about delay + grace (see lancedb-purge.ts). Defaults: 30 s, 30 s. */
  purgeDelayMs?: number;
  purgeGraceMs?: number;
  /**
   * LanceDB's in-memory caches (its defaults: 6 GB of index data, 1 GB of file metadata). Entries
   * of replaced index versions and compacted-away files stay until evicted, so over a long ingest
   * the process grows towards the caps: they are what bounds its memory.
   */
  indexCacheBytes?: number;
  metadataCacheBytes?: number;
}

export const DEFAULT_INDEX_CACHE_BYTES = 6 * 1024 * 1024 * 1024;
export const DEFAULT_METADATA_CACHE_BYTES = 128 * 1024 * 1024;

/**
 * Embedded vector store: one LanceDB table in a local directory, cosine distance. Small tables are
 * searched exactly; past a size threshold the vector column gets an approximate index built in
 * the background, and each search picks exact or approximate from how much the filter lets through.
 */
export class LanceDbVectorStore implements VectorStore {
  readonly kind = 'lancedb';
  private readonly dir: string;
  private readonly tableName: string;
  private readonly optimizeEvery: number;
  private readonly indexSettings: LanceIndexSettings;
  private readonly indexCheckIntervalMs: number;
  private readonly onIndexEvent: LanceDbOptions['onIndexEvent'];
  private indexing: Promise<void> | undefined;
  private lastIndexCheck = 0;
  private closing = false;
  /** Compaction rewrites fragments and would pre-empt (or be pre-empted by) an index commit. */
  private buildingIndex = false;
  private readonly visibleRows = new VisibleRowsCache({ ttlMs: 30_000 });
  private indexInfo: { value: VectorIndexInfo | null; at: number } | undefined;
  /** Rows missing from the full-text index, as last counted (see keywordBacklog). */
  private keywordUnindexed: { rows: number; at: number } | undefined;
  /**
   * Where each ranked hit's row was when it was ranked, so complete() can take it by row id: a
   * hidden property of this store's on the hit's point. Not a WeakMap: a search ranks ~200 points,
   * and a WeakMap's table keeps every dead key until a full collection, then rehashes all of them
   * in one go on the API thread (~100 ms under 35 searches a second).
   */
  private readonly rowKey = Symbol('lance row id');
  private conn: lancedb.Connection | undefined;
  private table: lancedb.Table | undefined;
  private dimension: number | undefined;
  /** The table's schema as of init: writes are built in it (see rowsToArrow). */
  private schema: arrow.Schema | undefined;
  private writesSinceOptimize = 0;
  /** LanceDB commits optimistically; concurrent writers on one table conflict, so this process queues its writes. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private readonly purgeGraceMs: number;
  private readonly purger: PurgeScheduler;
  private readonly session: lancedb.Session;

  constructor(opts: LanceDbOptions) {
    this.dir = opts.dir;
    this.purgeGraceMs = opts.purgeGraceMs ?? 30_000;
    this.purger = new PurgeScheduler(() => this.purge(), { delayMs: opts.purgeDelayMs ?? 30_000, graceMs: this.purgeGraceMs });
    this.tableName = opts.table ?? 'chunks';
    this.optimizeEvery = opts.optimizeEvery ?? 200;
    this.indexSettings = { ...DEFAULT_LANCE_INDEX_SETTINGS, ...opts.index };
    if (opts.aclIndexFromRows !== undefined) this.indexSettings.scalarIndexFromRows = opts.aclIndexFromRows;
    this.indexCheckIntervalMs = opts.indexCheckIntervalMs ?? 10_000;
    this.onIndexEvent = opts.onIndexEvent;
    this.session = new lancedb.Session(
      BigInt(opts.indexCacheBytes ?? DEFAULT_INDEX_CACHE_BYTES), BigInt(opts.metadataCacheBytes ?? DEFAULT_METADATA_CACHE_BYTES));
  }

  /** Bytes held by LanceDB's index and metadata caches (benchmarks, diagnostics). */
  cacheBytes(): number {
    return Number(this.session.sizeBytes());
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
    // The session goes in the options: connect()'s third argument is typed as the session but
    // LanceDB 0.37's implementation drops it, which left both caches at their 6 GB / 1 GB defaults.
    const conn = await lancedb.connect(this.dir, { readConsistencyInterval: 0, session: this.session });
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
    this.schema = writeSchema(await table.schema(), tableSchema(dimension));
    // Deletes an earlier process made but did not live to purge.
    const rows = await rowCounts(table);
    if (rows.physical > rows.live) this.purger.schedule();
  }

  /** One purge pass now: deleted rows' text and vectors leave the data files (see lancedb-purge.ts). */
  async purge(): Promise<PurgeReport> {
    // Its compaction would pre-empt (or be pre-empted by) an index build's commit: go after it.
    await this.indexingSettled();
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
      const result = await fn(table).finally(() => { this.keywordUnindexed = undefined; });
      if (++this.writesSinceOptimize >= this.optimizeEvery || (await this.keywordIndexBehind(table))) {
        this.writesSinceOptimize = 0;
        // Housekeeping: its failure must not fail the write that happened to trigger it.
        await this.housekeep(table).catch(() => undefined);
      }
      return result;
    });
    this.writeQueue = run.catch(() => undefined);
    void run.then(() => this.scheduleIndexing(), () => undefined);
    return run;
  }

  /** True when so many rows are missing from the full-text index that keyword queries would scan them (see lancedb-keyword.ts). */
  private async keywordIndexBehind(table: lancedb.Table): Promise<boolean> {
    // Counted through the backlog's cache (just cleared by the write), so the next keyword query reuses it.
    const [unindexed, rows] = await Promise.all([this.keywordBacklog(table).catch(() => 0), table.countRows().catch(() => 0)]);
    return keywordReindexDue(unindexed, rows);
  }

  /** Compacts fragments, prunes old versions and brings existing indexes up to date with new rows. */
  private async housekeep(table: lancedb.Table): Promise<void> {
    // Deferred, not lost: the index work runs housekeeping when it is done.
    if (this.buildingIndex) return;
    // Readers hold a version for one query; the purge's grace (30 s by default) is long enough for
    // them. Each compaction rewrites the small fragments a sync appended, and every version kept
    // holds on to the files it replaced: kept for minutes, they made a large ingest's directory
    // many times the table's size.
    await table.optimize({ cleanupOlderThan: new Date(Date.now() - this.purgeGraceMs) });
    this.keywordUnindexed = undefined;
  }

  /** Validated, de-duplicated table rows with the keyword columns filled in, as Arrow where they can be. */
  private rowsOf(points: ChunkPoint[]): Record<string, unknown>[] | arrow.Table {
    // Not copied: the Arrow table holds its own copy of every value before anything is awaited.
    const rows = dedupeById(points.map((p) => checkPoint(p, this.dimension))).map(keywordRow);
    // Plain rows are converted by LanceDB when the write runs, so those get their own arrays.
    return (this.schema && rowsToArrow(this.schema, rows as unknown as Record<string, unknown>[])) || rows.map(ownArrays) as unknown as Record<string, unknown>[];
  }

  async upsert(points: ChunkPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = this.rowsOf(points);
    await this.write((t) => t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows));
  }

  /**
   * Bulk load of points whose ids are new to the table (benchmarks seeding millions of rows): a
   * plain append, without the merge on `id` that makes each upsert read the whole id column.
   */
  async insertNew(points: ChunkPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = this.rowsOf(points);
    await this.write((t) => t.add(rows));
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

  search(vector: number[], filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    return this.vectorQuery(vector, filter, topK, RESULT_COLUMNS, hitsFromArrow);
  }

  keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    return this.textQuery(query, filter, topK, RESULT_COLUMNS, hitsFromArrow);
  }

  /** Each candidate's text and passage are read only for the hits shown (see VectorStore.ranking). */
  readonly ranking = {
    search: (vector: number[], filter: PermissionFilter, topK: number): Promise<RankedHit[]> =>
      this.vectorQuery(vector, filter, topK, RANKING_COLUMNS, rankedHitsFromArrow),
    keywordSearch: (query: string, filter: PermissionFilter, topK: number): Promise<RankedHit[]> =>
      this.textQuery(query, filter, topK, RANKING_COLUMNS, rankedHitsFromArrow),
    complete: (hits: RankedHit[]): Promise<VectorHit[]> => this.complete(hits),
  };

  private async vectorQuery<H extends RankedHit>(
    vector: number[], filter: PermissionFilter, topK: number, columns: readonly string[], decode: (t: arrow.Table, s: ScoreColumn) => H[],
  ): Promise<H[]> {
    const table = this.requireTable();
    assertVector(vector, this.dimension, 'query vector');
    const where = lancePermissionPredicate(filter);
    const limit = limitOf(topK);
    if (where === null || limit === 0) return [];
    const plan = await this.planFor(table, where, limit);
    const run = async (p: LanceSearchPlan) => {
      let query = table.vectorSearch(vector).distanceType('cosine').where(where);
      query = p.index === 'flat' ? query.bypassVectorIndex() : this.ivfQuery(query, p.nprobes);
      if (p.postfilter) query = query.postfilter();
      return this.located(await query.select([...columns, '_distance']).withRowId().limit(p.limit).toArrow(), { distance: true }, decode);
    };
    let hits = await run(plan);
    // Post-filtering kept too few: the visible rows rank lower than expected, so filter first.
    if (plan.postfilter && hits.length < limit) hits = await run({ ...plan, postfilter: false, limit });
    return hits.slice(0, limit);
  }

  private async textQuery<H extends RankedHit>(
    query: string, filter: PermissionFilter, topK: number, columns: readonly string[], decode: (t: arrow.Table, s: ScoreColumn) => H[],
  ): Promise<H[]> {
    const table = this.requireTable();
    if (typeof query !== 'string') throw new TypeError('query must be a string');
    const where = lancePermissionPredicate(filter);
    const match = keywordQuery(query);
    const limit = limitOf(topK);
    if (where === null || match === null || limit === 0) return [];
    // `where` prefilters (LanceDB's default for full-text search), so `limit` counts visible chunks only.
    const unindexed = await this.keywordBacklog(table);
    const rows = await table.query().fullTextSearch(match).where(where).select([...columns, '_score']).withRowId()
      .limit(keywordLimit(limit, unindexed)).toArrow();
    return this.located(rows, { column: '_score' }, decode)
      .sort((a, b) => b.score - a.score || (a.point.id < b.point.id ? -1 : 1))
      .slice(0, limit);
  }

  /**
   * The rest of each ranked hit's row, found through the `documentId` index (a row id could point
   * elsewhere after a compaction), kept in the hits' order with their scores.
   */
  private async complete(hits: RankedHit[]): Promise<VectorHit[]> {
    if (hits.length === 0) return [];
    const points = await this.takeLocated(hits);
    const missing = hits.filter((h) => !points.has(h.point.id));
    if (missing.length > 0) for (const [id, point] of await this.readByIds(missing)) points.set(id, point);
    return hits.flatMap((h) => {
      const point = points.get(h.point.id);
      return point ? [{ point, score: h.score }] : [];
    });
  }

  /** The hits' decoded rows, each noting where its row was (see complete). */
  private located<H extends RankedHit>(rows: arrow.Table, score: ScoreColumn, decode: (t: arrow.Table, s: ScoreColumn) => H[]): H[] {
    const hits = decode(rows, score);
    const rowIds = rows.getChild('_rowid');
    // Not enumerable: a copy or comparison of the point never sees it.
    if (rowIds) hits.forEach((h, i) => Object.defineProperty(h.point, this.rowKey, { value: BigInt(rowIds.get(i) as bigint | number) }));
    return hits;
  }

  /**
   * The rows of the hits taken by the row ids they were ranked from: one read of those rows rather
   * than a filtered query (a filtered query's planning is most of its cost at ten rows). A row id can
   * name another row or none after a compaction, so a hit whose chunk is not among the rows taken
   * is read by id (see complete).
   */
  private async takeLocated(hits: RankedHit[]): Promise<Map<string, VectorHit['point']>> {
    const rowIds = [...new Set(hits.map((h) => (h.point as Located)[this.rowKey]).filter((r) => r !== undefined))];
    if (rowIds.length === 0) return new Map();
    // A row id whose fragment a compaction removed fails the whole take: read by id instead.
    const rows = await this.requireTable().takeRowIds(rowIds).select([...RESULT_COLUMNS]).toArrow().catch(() => null);
    // Keyed by the chunk id each row holds, so a hit finds only its own chunk's row.
    return rows ? pointsById(rows) : new Map();
  }

  /** The rows of these hits found through the `documentId` index, by chunk id. */
  private async readByIds(hits: RankedHit[]): Promise<Map<string, VectorHit['point']>> {
    const ids = [...new Set(hits.map((h) => h.point.id))];
    const documentIds = [...new Set(hits.map((h) => h.point.documentId))];
    assertStrings(ids, 'hit ids');
    assertStrings(documentIds, 'hit document ids');
    const rows = await this.requireTable().query()
      .where(`documentId IN (${sqlList(documentIds)}) AND id IN (${sqlList(ids)})`)
      .select([...RESULT_COLUMNS])
      .limit(ids.length * 2)
      .toArrow();
    return pointsById(rows);
  }

  /** Exact or approximate, pre- or post-filtered, from the table's size, what the filter lets through and the vector index (see plan.ts). */
  private async planFor(table: lancedb.Table, where: string, limit: number): Promise<LanceSearchPlan> {
    const { exactMaxRows, nprobes } = this.indexSettings;
    const [totalRows, visibleRows, index] = await Promise.all([
      this.visibleRows.get('', () => table.countRows()),
      this.visibleRows.get(where, () => table.countRows(where)),
      this.vectorIndexInfo(table),
    ]);
    return planLanceSearch({ totalRows, visibleRows, limit, exactMaxRows, nprobes, index });
  }

  /** The newest vector index, re-read at most every few seconds (another process may build one). */
  private async vectorIndexInfo(table: lancedb.Table): Promise<VectorIndexInfo | null> {
    const cached = this.indexInfo;
    if (cached && Date.now() - cached.at < 10_000) return cached.value;
    // Only the index names: they carry the kind and training size (no row count or index statistics read here).
    const vector = (await table.listIndices()).map((i) => parseVectorIndexName(i.name)).filter((v) => v !== undefined);
    const newest = vector.sort((a, b) => a.trainedRows - b.trainedRows).at(-1);
    const value = newest ? { kind: newest.kind, partitions: partitionsFor(newest.trainedRows) } : null;
    this.indexInfo = { value, at: Date.now() };
    return value;
  }

  /**
   * Rows the full-text index has not seen, counted at most once a second (two catalogue reads
   * per query otherwise) and again after every write of this process. Rows another process adds
   * within that second can be missed by a keyword query for that second; a stale count only
   * shortens a keyword list, never widens what the filter lets through.
   */
  private async keywordBacklog(table: lancedb.Table): Promise<number> {
    const cached = this.keywordUnindexed;
    if (cached && Date.now() - cached.at < 1_000) return cached.rows;
    const rows = await unindexedKeywordRows(table);
    this.keywordUnindexed = { rows, at: Date.now() };
    return rows;
  }

  /** The approximate query; rows not yet in the index are brute-forced by LanceDB and merged in. */
  private ivfQuery(query: lancedb.VectorQuery, nprobes: number): lancedb.VectorQuery {
    const s = this.indexSettings;
    if (s.kind === 'ivf_hnsw_sq') return query.ef(s.ef).refineFactor(s.refineFactor);
    query = query.nprobes(nprobes);
    return s.kind === 'ivf_pq' ? query.refineFactor(s.refineFactor) : query;
  }

  /** After writes, at most every `indexCheckIntervalMs`: starts index work in the background if the table has outgrown its indexes. */
  private scheduleIndexing(): void {
    if (this.indexing || this.closing || Date.now() - this.lastIndexCheck < this.indexCheckIntervalMs) return;
    this.lastIndexCheck = Date.now();
    void this.exclusive(() => this.indexOnce()).then(
      (report) => { if (report) this.onIndexEvent?.({ ok: true, report }); },
      // Retried at the next check; searches stay correct (and exact) meanwhile.
      (error: unknown) => this.onIndexEvent?.({ ok: false, error }),
    );
  }

  /** One index job at a time per store: two builds of the same index would only race to commit. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = fn();
    const guard: Promise<void> = run.then(() => undefined, () => undefined).finally(() => {
      if (this.indexing === guard) this.indexing = undefined;
    });
    this.indexing = guard;
    return run;
  }

  private async indexOnce(): Promise<IndexWorkReport | undefined> {
    const table = this.requireTable();
    const state = await readIndexState(table);
    const actions = planIndexWork(state, this.indexSettings);
    let report: IndexWorkReport | undefined;
    if (actions.length) {
      this.buildingIndex = true;
      try {
        // Training reads every row anyway: the moment to put them in ACL order first (see lancedb-layout.ts).
        let layout: IndexWorkReport['layout'];
        if (this.indexSettings.orderByAcl && actions.some((a) => a.type === 'vector' && a.build)) {
          // Only speed depends on it: an index is still built when the rewrite fails (a concurrent writer, say).
          layout = await this.orderByAcl().catch((error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }));
        }
        report = await runIndexWork(table, actions);
        if (layout) report.layout = layout;
        this.indexInfo = undefined;
      } finally {
        this.buildingIndex = false;
      }
    }
    // Rows outside the vector index are brute-forced on every search; past a bound (or after a
    // build, during which writes went on) fold them in: optimize() adds them to the partitions.
    if (report?.actions.some((a) => a.type === 'vector') || (state.vector.length && state.unindexedRows >= this.indexSettings.maxUnindexedRows)) {
      await this.write((t) => this.housekeep(t));
    }
    return report;
  }

  /**
   * Waits for background index work, then brings the indexes fully up to date: builds what is
   * due and adds unindexed rows to existing indexes. For benchmarks and operators; the store does
   * this on its own as writes come in.
   */
  async buildIndexes(): Promise<{ built: IndexWorkReport | undefined; optimizeSeconds: number }> {
    while (this.indexing) await this.indexing;
    await this.writeQueue;
    const built = await this.exclusive(() => this.indexOnce());
    const t0 = performance.now();
    await this.write((t) => this.housekeep(t));
    this.visibleRows.clear();
    this.indexInfo = undefined;
    return { built, optimizeSeconds: (performance.now() - t0) / 1000 };
  }

  /** Rewrites the table in ACL order unless it nearly is (see lancedb-layout.ts); index work does this before training. */
  async orderByAcl(opts: { batchRows?: number } = {}): Promise<LayoutReport> {
    // A compaction between two batches would change the row ids the rewrite has yet to move.
    const building = this.buildingIndex;
    this.buildingIndex = true;
    try {
      return await orderByAcl(this.requireTable(), (fn) => this.write(fn), {
        schema: this.schema, batchRows: opts.batchRows, cleanupOlderThan: new Date(Date.now() - this.purgeGraceMs),
      });
    } finally {
      this.buildingIndex = building;
      this.visibleRows.clear();
    }
  }

  /** Resolves when the background index work started so far has finished (for tests and shutdown). */
  async indexingSettled(): Promise<void> {
    await this.indexing;
  }

  /** What the table's indexes look like now (for benchmarks, stats and tests). */
  async indexStatus() {
    return readIndexState(this.requireTable());
  }

  async documentChunks(documentId: string, generation: number): Promise<Omit<ChunkPoint, 'vector'>[]> {
    if (!Number.isSafeInteger(generation)) throw new TypeError('generation must be an integer');
    const rows = await this.requireTable().query()
      .where(`documentId = ${sqlString(documentId)} AND generation = ${generation}`)
      .select([...RESULT_COLUMNS])
      // A plain query has no natural end; a document never has this many chunks.
      .limit(1_000_000)
      .toArrow();
    return hitsFromArrow(rows, { distance: true }).map((h) => h.point).sort((a, b) => a.chunkIndex - b.chunkIndex);
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
    this.closing = true;
    await this.purger.close();
    // An index build cannot be interrupted; the table handle must outlive it.
    await this.indexing;
    await this.writeQueue;
    this.table?.close();
    this.conn?.close();
    this.table = undefined;
    this.conn = undefined;
  }
}

/** Result rows' points by chunk id. */
function pointsById(rows: arrow.Table): Map<string, VectorHit['point']> {
  return new Map(hitsFromArrow(rows, { distance: true }).map((h) => [h.point.id, h.point]));
}

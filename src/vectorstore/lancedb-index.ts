import * as lancedb from '@lancedb/lancedb';
import type { LayoutReport } from './lancedb-layout.ts';

/**
 * Which approximate index the vector column gets. `ivf_flat` (the default) keeps full vectors in
 * its partitions, so distances are exact and recall depends only on how many partitions are
 * probed; `ivf_pq` stores 16× smaller codes and re-ranks `refineFactor × k` candidates on the full
 * vectors; `ivf_hnsw_sq` builds an HNSW graph over int8 codes per partition (slow to build).
 */
export type LanceVectorIndexKind = 'ivf_flat' | 'ivf_pq' | 'ivf_hnsw_sq';
export const LANCE_VECTOR_INDEX_KINDS: readonly LanceVectorIndexKind[] = ['ivf_flat', 'ivf_pq', 'ivf_hnsw_sq'];

export interface LanceIndexSettings {
  /** Rows from which the vector column gets an approximate index. Below it every search is exact. */
  vectorIndexFromRows: number;
  /** Rows from which `acl` (label list), `sourceId` (bitmap) and `documentId` (btree) get scalar indexes. */
  scalarIndexFromRows: number;
  /** The vector index is trained again once the table holds this many times the rows it was trained on. */
  retrainGrowth: number;
  kind: LanceVectorIndexKind;
  /** IVF partitions searched per query (ANN plan). */
  nprobes: number;
  /** For quantized kinds: candidates re-ranked on full vectors, as a multiple of k. */
  refineFactor: number;
  /** HNSW candidate list length (ivf_hnsw_sq only). */
  ef: number;
  /** A filter that lets through at most this many rows is searched exactly (see plan.ts). */
  exactMaxRows: number;
  /** Unindexed rows (brute-forced by every search) that make the background check fold them into the index. */
  maxUnindexedRows: number;
  /** Rewrite the table in ACL order before the vector index is trained (see lancedb-layout.ts). */
  orderByAcl: boolean;
}

export const DEFAULT_LANCE_INDEX_SETTINGS: LanceIndexSettings = {
  vectorIndexFromRows: 50_000,
  scalarIndexFromRows: 20_000,
  retrainGrowth: 2,
  kind: 'ivf_flat',
  nprobes: 20,
  refineFactor: 10,
  ef: 100,
  exactMaxRows: 20_000,
  maxUnindexedRows: 20_000,
  orderByAcl: true,
};

const VECTOR_INDEX_PREFIX = 'vector_ann_';
/** The row count an index was trained on travels in its name, so any process can tell when to retrain. */
export const vectorIndexName = (kind: LanceVectorIndexKind, trainedRows: number) => `${VECTOR_INDEX_PREFIX}${kind}_${trainedRows}`;

export function parseVectorIndexName(name: string): { kind: LanceVectorIndexKind; trainedRows: number } | undefined {
  if (!name.startsWith(VECTOR_INDEX_PREFIX)) return undefined;
  const rest = name.slice(VECTOR_INDEX_PREFIX.length);
  const cut = rest.lastIndexOf('_');
  const kind = rest.slice(0, cut) as LanceVectorIndexKind;
  const digits = rest.slice(cut + 1);
  const trainedRows = Number(digits);
  if (!LANCE_VECTOR_INDEX_KINDS.includes(kind) || !/^\d{1,15}$/.test(digits)) return undefined;
  return { kind, trainedRows };
}

/** √rows partitions (the usual IVF rule, ~1,000 rows each), at least 2 and at most 4,096. */
export function partitionsFor(rows: number): number {
  return Math.min(4096, Math.max(2, Math.round(Math.sqrt(rows))));
}

export function vectorIndexConfig(kind: LanceVectorIndexKind, rows: number): lancedb.Index {
  const numPartitions = partitionsFor(rows);
  switch (kind) {
    case 'ivf_flat':
      return lancedb.Index.ivfFlat({ distanceType: 'cosine', numPartitions });
    case 'ivf_pq':
      return lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions });
    case 'ivf_hnsw_sq':
      // One graph per ~500k rows keeps the memory of training bounded.
      return lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: Math.max(1, Math.round(rows / 500_000)) });
  }
}

/** What a table has, as far as the decisions below need it. */
export interface IndexState {
  rows: number;
  /** Columns with a scalar index. */
  scalar: Set<string>;
  /** Vector indexes made by this module, newest training last. */
  vector: { name: string; kind: LanceVectorIndexKind; trainedRows: number }[];
  /** Rows not yet in the newest vector index (searched by brute force until `optimize()` adds them). */
  unindexedRows: number;
}

export type IndexAction =
  | { type: 'scalar'; column: 'acl' | 'sourceId' | 'documentId' }
  /** Trains a vector index on the table as it is now (unless `build` is false), then drops `drop`. */
  | { type: 'vector'; kind: LanceVectorIndexKind; trainRows: number; build: boolean; drop: string[] };

const SCALAR_COLUMNS = ['acl', 'sourceId', 'documentId'] as const;

/** The index work a table of this state needs now (pure, so the policy is testable without data). */
export function planIndexWork(state: IndexState, settings: LanceIndexSettings): IndexAction[] {
  const actions: IndexAction[] = [];
  if (state.rows >= settings.scalarIndexFromRows) {
    for (const column of SCALAR_COLUMNS) if (!state.scalar.has(column)) actions.push({ type: 'scalar', column });
  }
  const newest = state.vector.at(-1);
  const stale = state.vector.filter((v) => v !== newest).map((v) => v.name);
  if (state.rows >= settings.vectorIndexFromRows) {
    if (!newest || newest.kind !== settings.kind || state.rows >= newest.trainedRows * settings.retrainGrowth) {
      actions.push({ type: 'vector', kind: settings.kind, trainRows: state.rows, build: true, drop: state.vector.map((v) => v.name) });
    } else if (stale.length) {
      // A retrain that committed its new index but stopped before dropping the old one.
      actions.push({ type: 'vector', kind: newest.kind, trainRows: newest.trainedRows, build: false, drop: stale });
    }
  }
  return actions;
}

export async function readIndexState(table: lancedb.Table): Promise<IndexState> {
  const [rows, indices] = await Promise.all([table.countRows(), table.listIndices()]);
  const scalar = new Set<string>();
  const vector: IndexState['vector'] = [];
  for (const index of indices) {
    const parsed = parseVectorIndexName(index.name);
    if (parsed) vector.push({ name: index.name, ...parsed });
    else if (index.columns.length === 1 && SCALAR_COLUMNS.includes(index.columns[0] as never)) scalar.add(index.columns[0]!);
  }
  vector.sort((a, b) => a.trainedRows - b.trainedRows);
  const newest = vector.at(-1);
  const stats = newest ? await table.indexStats(newest.name) : undefined;
  return { rows, scalar, vector, unindexedRows: stats ? stats.numUnindexedRows : rows };
}

export interface IndexWorkReport {
  actions: IndexAction[];
  seconds: number;
  /** The ACL-order rewrite that went before a vector build, or why it failed. */
  layout?: LayoutReport | { error: string };
}

/**
 * Builds what `planIndexWork` asked for. Writers go on meanwhile: LanceDB trains on the version it
 * started from and commits on top of later appends, deletes and updates; rows written during the
 * build are simply not in the index yet and are searched by brute force until the next
 * `optimize()` adds them. A retrained vector index is committed before the old one is dropped, so
 * searches always have one.
 */
export async function runIndexWork(table: lancedb.Table, actions: IndexAction[]): Promise<IndexWorkReport> {
  const t0 = performance.now();
  for (const action of actions) {
    if (action.type === 'scalar') {
      const config = action.column === 'acl' ? lancedb.Index.labelList() : action.column === 'sourceId' ? lancedb.Index.bitmap() : lancedb.Index.btree();
      await table.createIndex(action.column, { config, replace: true });
      continue;
    }
    const name = vectorIndexName(action.kind, action.trainRows);
    if (action.build) await table.createIndex('vector', { config: vectorIndexConfig(action.kind, action.trainRows), name, replace: true });
    // A rewrite of every row (lancedb-layout.ts) leaves an old index covering nothing, and compaction removes it.
    const present = new Set((await table.listIndices()).map((i) => i.name));
    for (const old of action.drop) if (old !== name && present.has(old)) await table.dropIndex(old);
  }
  return { actions, seconds: (performance.now() - t0) / 1000 };
}

import * as lancedb from '@lancedb/lancedb';
import * as arrow from 'apache-arrow';
import { analyze, keywordText, MAX_TERM_LENGTH, queryTerms } from '../text/analyzer.ts';
import type { ChunkPoint } from './interface.ts';

/**
 * LanceDB's keyword channel: its native full-text (BM25) index over a `terms` column that holds
 * each chunk's terms as our analyzer produced them, separated by spaces. The index tokenizes that
 * column on whitespace only (no lower-casing, stemming or stop words of its own), so LanceDB ranks
 * exactly the terms the other stores rank, and a query goes through the same analyzer.
 */
export const TERMS_COLUMN = 'terms';

/** Nullable so that rows written before the keyword channel are recognisable (NULL) and backfilled. */
export const KEYWORD_COLUMNS = () => [
  new arrow.Field(TERMS_COLUMN, new arrow.Utf8(), true),
  new arrow.Field('context', new arrow.Utf8(), true),
];

export function keywordRow(p: ChunkPoint): Omit<ChunkPoint, 'context'> & { terms: string; context: string | null } {
  return { ...p, terms: analyze(keywordText(p)).join(' '), context: p.context ?? null };
}

export function keywordQuery(query: string): lancedb.MatchQuery | null {
  const terms = queryTerms(query);
  if (terms.length === 0) return null;
  return new lancedb.MatchQuery(terms.join(' '), TERMS_COLUMN, { operator: lancedb.Operator.Or });
}

const FTS = () => lancedb.Index.fts({
  baseTokenizer: 'whitespace', lowercase: false, stem: false, removeStopWords: false, asciiFolding: false,
  // Positions serve phrase queries, which the channel does not make; without them the index is smaller.
  withPosition: false,
  maxTokenLength: MAX_TERM_LENGTH,
});

/** Creates the full-text index on `terms` unless it exists (rows added later are searched too, unindexed, until the next optimize). */
export async function ensureKeywordIndex(table: lancedb.Table): Promise<void> {
  const indices = await table.listIndices();
  if (indices.some((i) => i.columns.includes(TERMS_COLUMN))) return;
  await table.createIndex(TERMS_COLUMN, { config: FTS() });
}

/** Rows the full-text index has not seen yet (new or rewritten since the last optimize). */
export async function unindexedKeywordRows(table: lancedb.Table): Promise<number> {
  const index = (await table.listIndices()).find((i) => i.columns.includes(TERMS_COLUMN));
  if (!index) return 0;
  return (await table.indexStats(index.name))?.numUnindexedRows ?? 0;
}

/**
 * Above this many unindexed rows the next write brings the index up to date (LanceDB's optimize):
 * each query also reads all of them (see keywordLimit).
 */
export const KEYWORD_REINDEX_ROWS = 2_000;
/**
 * …or this share of the table, if more: optimize also compacts, which rewrites every fragment
 * below LanceDB's target size, i.e. the whole table below a million rows. At a fixed 2,000 rows a
 * 100k-document ingest rewrote the table fifty times; growing with the table, the rewrites add up
 * to a few times its final size.
 */
export const KEYWORD_REINDEX_SHARE = 0.1;

export const keywordReindexDue = (unindexed: number, rows: number) => unindexed >= Math.max(KEYWORD_REINDEX_ROWS, rows * KEYWORD_REINDEX_SHARE);

/**
 * LanceDB searches rows its full-text index has not seen yet by a flat scan that returns the
 * first matches it meets, in row order, not the best ones. Asking for `topK` plus every
 * unindexed row gets the indexed top `topK` and every unindexed match; the caller sorts by score.
 */
export const keywordLimit = (topK: number, unindexed: number) => topK + unindexed;

const BACKFILL_BATCH = 2_000;

/**
 * Adds the keyword columns to a table written before they existed and fills `terms` from each
 * row's stored heading path and text. Vectors are not touched. Resumable: rows still NULL after
 * an interruption are picked up at the next start.
 */
export async function backfillKeywordTerms(table: lancedb.Table): Promise<number> {
  const names = new Set((await table.schema()).fields.map((f) => f.name));
  const missing = KEYWORD_COLUMNS().filter((f) => !names.has(f.name));
  if (missing.length) await table.addColumns(missing.map((f) => ({ name: f.name, valueSql: 'CAST(NULL AS STRING)' })));
  const schema = new arrow.Schema([new arrow.Field('id', new arrow.Utf8(), false), new arrow.Field(TERMS_COLUMN, new arrow.Utf8(), false)]);
  let done = 0;
  for (;;) {
    const rows = await table.query().where(`${TERMS_COLUMN} IS NULL`).select(['id', 'sectionPath', 'text']).limit(BACKFILL_BATCH).toArray() as Record<string, unknown>[];
    if (rows.length === 0) return done;
    const updates = rows.map((r) => ({
      id: String(r.id),
      terms: analyze(keywordText({ sectionPath: r.sectionPath == null ? [] : Array.from(r.sectionPath as Iterable<string>, String), text: String(r.text) })).join(' '),
    }));
    await table.mergeInsert('id').whenMatchedUpdateAll().execute(lancedb.makeArrowTable(updates, { schema }));
    done += rows.length;
  }
}

import type * as lancedb from '@lancedb/lancedb';
import type * as arrow from 'apache-arrow';
import { mergeUnchanged } from './lancedb-purge.ts';

/**
 * Keeping chunks with the same permissions next to each other on disk.
 *
 * A caller who may see a small share of the table is searched exactly (see plan.ts): LanceDB
 * probes every IVF partition and tests each row against the caller's row-id mask before any
 * distance is computed. That test is the search's cost (at a million chunks, ~60 % of its CPU),
 * and it depends on where the visible rows are: the mask is a roaring bitmap, and ten thousand
 * visible rows spread through the table fill every one of its containers with scattered ids,
 * while the same rows side by side make a few dense containers that nearly every test skips.
 * Rows land in the order they were synced, so a caller's chunks are spread through the table.
 *
 * Before the vector index is (re)trained, the table is therefore rewritten in the order of each
 * row's ACL (rows with the same ACL keep their relative order, so a document stays together).
 * The rewrite is a merge-insert per batch of rows, each one atomic: a reader sees every row
 * exactly once, before or after its move. It only moves a row that is unchanged since it was
 * read (same generation and ACL); a row another process changed meanwhile stays where it is,
 * neither reverted nor lost. Rows written later are appended at the end, and the next retrain
 * (when the table has doubled) orders them too.
 */

export interface LayoutReport {
  rows: number;
  /** Distinct ACLs in the table. */
  acls: number;
  /** Runs of equal ACLs in physical order before the pass (as many as `acls` when ordered). */
  runsBefore: number;
  rowsRewritten: number;
  seconds: number;
  /** Why nothing was rewritten. */
  skipped?: 'ordered';
}

type Write = <T>(fn: (table: lancedb.Table) => Promise<T>) => Promise<T>;

/** The sort key of an ACL: its principals in a fixed order, so equal sets compare equal. */
export function aclKey(acl: readonly string[]): string {
  return [...acl].sort().join('\u0000');
}

export interface Layout {
  /** Row ids in physical order. */
  rowIds: BigUint64Array;
  /** Rank of each row's ACL key (same index as rowIds). */
  ranks: Uint32Array;
  acls: number;
  runs: number;
}

/** Runs of equal values in physical order. */
export function countRuns(ranks: ArrayLike<number>): number {
  let runs = 0;
  for (let i = 0; i < ranks.length; i++) if (i === 0 || ranks[i] !== ranks[i - 1]) runs++;
  return runs;
}

/** Positions of the rows in ACL order (ties in physical order): the order the rewrite writes them in. */
export function aclOrder(layout: Pick<Layout, 'ranks'>): Uint32Array {
  const order = new Uint32Array(layout.ranks.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const { ranks } = layout;
  return order.sort((a, b) => ranks[a]! - ranks[b]! || a - b);
}

/** Every row's id and ACL, read without the other columns, in physical order. */
export async function readLayout(table: lancedb.Table): Promise<Layout> {
  const data = await table.query().select(['acl']).withRowId().toArrow();
  const n = data.numRows;
  const idCol = data.getChild('_rowid')!;
  const aclCol = data.getChild('acl')!;
  const rows: { id: bigint; key: string }[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const acl = aclCol.get(i) as Iterable<string> | null;
    rows[i] = { id: BigInt(idCol.get(i) as bigint | number), key: aclKey(acl ? Array.from(acl, String) : []) };
  }
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const rank = new Map(keys.map((k, i) => [k, i]));
  const rowIds = new BigUint64Array(n);
  const ranks = new Uint32Array(n);
  rows.forEach((r, i) => {
    rowIds[i] = r.id;
    ranks[i] = rank.get(r.key)!;
  });
  return { rowIds, ranks, acls: keys.length, runs: countRuns(ranks) };
}

/** One Arrow row as a plain object (vectors as Float32Array views, lists as arrays). */
function plainRow(data: arrow.Table, i: number): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const field of data.schema.fields) {
    if (field.name === '_rowid') continue;
    const v = data.getChild(field.name)!.get(i) as unknown;
    if (v === null || v === undefined) row[field.name] = null;
    else if (field.name === 'vector') row[field.name] = (v as { toArray(): Float32Array }).toArray();
    else if (typeof v === 'object' && Symbol.iterator in (v as object)) row[field.name] = Array.from(v as Iterable<unknown>);
    else row[field.name] = v;
  }
  return row;
}

/**
 * Rewrites the table in ACL order when its rows are not already (nearly) in it. `schema` is the
 * table's write schema (see rowsToArrow). Each batch is read and merged inside one write of this
 * process, so its own writers cannot interleave; compaction at the end merges the new fragments in
 * their order and drops the old ones.
 */
export async function orderByAcl(table: lancedb.Table, write: Write, opts: {
  schema: arrow.Schema | undefined; batchRows?: number; cleanupOlderThan?: Date;
}): Promise<LayoutReport> {
  const t0 = performance.now();
  const layout = await readLayout(table);
  const report: LayoutReport = { rows: layout.rowIds.length, acls: layout.acls, runsBefore: layout.runs, rowsRewritten: 0, seconds: 0 };
  // Ordered, or close: a few appended rows do not pay for rewriting all of them.
  if (layout.runs <= Math.max(layout.acls * 2, layout.acls + 16)) {
    report.skipped = 'ordered';
    report.seconds = (performance.now() - t0) / 1000;
    return report;
  }
  const order = aclOrder(layout);
  const batchRows = opts.batchRows ?? 10_000;
  for (let start = 0; start < order.length; start += batchRows) {
    const ids = Array.from(order.subarray(start, start + batchRows), (i) => layout.rowIds[i]!);
    report.rowsRewritten += await write(async (t) => {
      // Taken rows come back in row-id order; the merge writes them in the order given.
      const taken = await t.takeRowIds(ids).withRowId().toArrow();
      const position = new Map(ids.map((id, i) => [id, i]));
      const idCol = taken.getChild('_rowid')!;
      const rows: { at: number; row: Record<string, unknown> }[] = [];
      for (let i = 0; i < taken.numRows; i++) {
        const at = position.get(BigInt(idCol.get(i) as bigint | number));
        // A row id that no longer names a row read above (deleted, or compacted by another process) is left out.
        if (at !== undefined) rows.push({ at, row: plainRow(taken, i) });
      }
      if (rows.length === 0) return 0;
      rows.sort((a, b) => a.at - b.at);
      const plain = rows.map((r) => r.row);
      await mergeUnchanged(t, plain, opts.schema);
      return plain.length;
    });
  }
  await write((t) => t.optimize(opts.cleanupOlderThan ? { cleanupOlderThan: opts.cleanupOlderThan } : {}));
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

import type * as lancedb from '@lancedb/lancedb';
import type * as arrow from 'apache-arrow';
import { rowsToArrow } from './lancedb-rows.ts';

/**
 * Deleting rows in LanceDB only writes a deletion vector: the row's text and vector stay inside the
 * fragment's data file, and every older table version keeps referencing that file. Compaction
 * (`optimize`) rewrites a fragment only when it is small next to a neighbour or more than 10 % of
 * it is deleted, and cleanup removes a file only once no version newer than the cut-off uses it.
 * So a deleted document can stay on disk indefinitely unless something makes sure it does not.
 *
 * A purge pass: compact and clean up; then find fragments that still carry deleted rows (live row
 * ids `fragment << 32 | offset` with holes, or fewer physical rows accounted for than the table
 * has) and rewrite their live rows in place with a merge-insert, which leaves the old fragment
 * fully deleted so LanceDB drops it; then clean up again. Readers of other processes may still be
 * reading an old version, so versions younger than `graceMs` are kept and a second pass after the
 * grace removes them. From a delete to its bytes leaving the disk: at most delay + grace + the
 * passes' own work.
 */

export interface PurgeOptions {
  /** Wait after a delete before purging, so a burst of deletes costs one pass. */
  delayMs: number;
  /** Table versions younger than this survive a pass (a concurrent reader may hold them). */
  graceMs: number;
  /** Rows per merge-insert when a fragment is rewritten. */
  batchRows?: number;
}

export interface PurgeReport {
  fragmentsRewritten: number;
  rowsRewritten: number;
  versionsRemoved: number;
  /** Deleted rows still on disk after the pass (0 unless a concurrent change kept a row from being rewritten). */
  deletedRowsLeft: number;
}

type Write = <T>(fn: (table: lancedb.Table) => Promise<T>) => Promise<T>;

const FRAGMENT_SHIFT = 32n;

/** Rows on disk (live plus deleted) and live rows, from the manifest's fragment statistics. */
export async function rowCounts(table: lancedb.Table): Promise<{ physical: number; live: number }> {
  const s = await table.stats();
  return { physical: Math.round(s.fragmentStats.lengths.mean * s.fragmentStats.numFragments), live: s.numRows };
}

/** Fragments whose live row offsets show deleted rows; all of them when some deletion cannot be placed. */
async function fragmentsWithDeletions(table: lancedb.Table, physical: number): Promise<bigint[]> {
  const arrow = await table.query().select(['generation']).withRowId().toArrow();
  const perFragment = new Map<bigint, { live: number; maxOffset: bigint }>();
  const col = arrow.getChild('_rowid');
  if (col) {
    for (const v of col as Iterable<bigint | number>) {
      const id = BigInt(v);
      const fragment = id >> FRAGMENT_SHIFT;
      const offset = id & 0xffffffffn;
      const f = perFragment.get(fragment) ?? { live: 0, maxOffset: -1n };
      f.live++;
      if (offset > f.maxOffset) f.maxOffset = offset;
      perFragment.set(fragment, f);
    }
  }
  const holes = [...perFragment].filter(([, f]) => BigInt(f.live) < f.maxOffset + 1n).map(([id]) => id);
  const accounted = [...perFragment.values()].reduce((n, f) => n + Number(f.maxOffset + 1n), 0);
  // Deleted rows at the end of a fragment leave no hole; if the manifest counts more rows than the
  // offsets explain, rewrite every fragment rather than guess which one holds them.
  return accounted < physical ? [...perFragment.keys()] : holes;
}

/**
 * Writes rows read from the table back over themselves (in the order given, into new fragments),
 * each only if it is still the row that was read: a row another process changed meanwhile (new
 * generation or ACL) does not match and is left as that process wrote it, never reverted; a row
 * deleted meanwhile does not match and is not brought back.
 */
export async function mergeUnchanged(table: lancedb.Table, rows: Record<string, unknown>[], schema?: arrow.Schema): Promise<void> {
  await table.mergeInsert('id').whenMatchedUpdateAll({ where: 'target.generation = source.generation AND target.acl = source.acl' })
    .execute((schema && rowsToArrow(schema, rows)) ?? rows);
}

const plainList = (v: unknown): string[] => (v == null ? [] : Array.from(v as Iterable<string>, String));

/**
 * Rewrites the live rows of one fragment. Read and merge happen inside one write of this process,
 * so its own writers cannot interleave; a row another process changed meanwhile (new generation or
 * ACL) does not match the condition and is left alone, never reverted, and the next pass retries.
 */
async function rewriteFragment(write: Write, fragment: bigint, batchRows: number): Promise<number> {
  let rewritten = 0;
  const base = fragment << FRAGMENT_SHIFT;
  const end = base + (1n << FRAGMENT_SHIFT);
  for (let from = base; from < end;) {
    const n = await write(async (table) => {
      const rows = (await table.query().where(`_rowid >= ${from} AND _rowid < ${end}`).withRowId().limit(batchRows).toArray()) as Record<string, unknown>[];
      if (rows.length === 0) return { count: 0, last: end };
      const last = rows.reduce((m, r) => (BigInt(r._rowid as bigint) > m ? BigInt(r._rowid as bigint) : m), -1n);
      const plain = rows.map((r) => {
        const { _rowid: _ignored, ...rest } = r;
        const out: Record<string, unknown> = { ...rest };
        for (const [k, v] of Object.entries(rest)) {
          if (k === 'vector') out[k] = Array.from(v as Iterable<number>, Number);
          else if (v !== null && typeof v === 'object' && Symbol.iterator in (v as object) && !(typeof v === 'string')) out[k] = plainList(v);
        }
        return out;
      });
      await mergeUnchanged(table, plain);
      return { count: rows.length, last: last + 1n };
    });
    rewritten += n.count;
    if (n.count === 0) break;
    from = n.last;
  }
  return rewritten;
}

/** One purge pass over the table. */
export async function purgeTable(table: lancedb.Table, write: Write, opts: { graceMs: number; batchRows?: number }): Promise<PurgeReport> {
  const report: PurgeReport = { fragmentsRewritten: 0, rowsRewritten: 0, versionsRemoved: 0, deletedRowsLeft: 0 };
  const cleanup = async () => {
    const stats = await write((t) => t.optimize({ cleanupOlderThan: new Date(Date.now() - opts.graceMs) }));
    report.versionsRemoved += stats.prune.oldVersionsRemoved;
  };
  await cleanup();
  let counts = await rowCounts(table);
  if (counts.physical > counts.live) {
    for (const fragment of await fragmentsWithDeletions(table, counts.physical)) {
      report.rowsRewritten += await rewriteFragment(write, fragment, opts.batchRows ?? 10_000);
      report.fragmentsRewritten++;
    }
    await cleanup();
    counts = await rowCounts(table);
  }
  report.deletedRowsLeft = Math.max(0, counts.physical - counts.live);
  return report;
}

/**
 * Schedules purge passes after deletes: at most one pending at a time (a burst of deletes waits
 * for the same pass), a follow-up pass after the grace when a pass wrote anything (its own old
 * versions are then younger than the cut-off), and a retry when a pass failed.
 */
export class PurgeScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly waiters: (() => void)[] = [];
  lastReport: PurgeReport | undefined;
  lastError: unknown;

  constructor(private readonly pass: () => Promise<PurgeReport>, private readonly opts: PurgeOptions) {}

  /** A delete happened: make sure a pass runs within `delayMs`. */
  schedule(delayMs = this.opts.delayMs): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPass().finally(() => { this.running = undefined; });
    }, delayMs);
    this.timer.unref();
  }

  /** Resolves once no pass is pending or running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.timer || this.running) {
      if (this.running) await this.running;
      else await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private async runPass(): Promise<void> {
    try {
      const report = await this.pass();
      this.lastReport = report;
      this.lastError = undefined;
      const wrote = report.rowsRewritten > 0 || report.versionsRemoved > 0;
      // What this pass replaced is younger than the grace: the next pass (after it) removes it.
      if (report.deletedRowsLeft > 0) this.schedule(Math.max(this.opts.graceMs, 1000));
      else if (wrote) this.schedule(this.opts.graceMs);
    } catch (err) {
      // A commit conflict with another process's write, most likely: try again later.
      this.lastError = err;
      this.schedule(Math.max(this.opts.delayMs, 1000));
    } finally {
      for (const w of this.waiters.splice(0)) w();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w();
    await this.running;
  }
}

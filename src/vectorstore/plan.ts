/**
 * Choosing how a filtered vector search runs. An approximate index finds the nearest chunks by
 * looking only near the query; when a caller may see a small share of the index, the chunks they
 * may see that rank highest for them are usually not near the query at all, and the index misses
 * them. Such searches run exactly over the visible chunks instead, which is cheap precisely
 * because there are few. The plan only decides speed and recall: every plan applies the same
 * permission filter before ranking.
 */

export type SearchPlan = 'exact' | 'ann';

/**
 * Visible-row counts per filter, kept for a short time. A count costs a scalar-index lookup,
 * which is worth paying once per caller and minute, not once per query. A stale count only makes
 * a search slower or less complete for a moment, never wider.
 */
export class VisibleRowsCache {
  private readonly entries = new Map<string, { rows: number; at: number }>();
  private readonly inFlight = new Map<string, Promise<number>>();

  constructor(private readonly opts: { ttlMs?: number; maxEntries?: number; now?: () => number } = {}) {}

  private get ttl() { return this.opts.ttlMs ?? 60_000; }
  private now() { return (this.opts.now ?? Date.now)(); }

  async get(key: string, count: () => Promise<number>): Promise<number> {
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.ttl) return hit.rows;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const p = count().then((rows) => {
      this.entries.delete(key);
      this.entries.set(key, { rows, at: this.now() });
      // Map order is insertion order: the first key is the least recently refreshed.
      const max = this.opts.maxEntries ?? 10_000;
      while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
      return rows;
    }).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * `exact` when the filter lets through at most `exactMaxRows` chunks (or the whole index is that
 * small), `ann` otherwise. Measured with `npx clearance bench search --synthetic`: see
 * docs/search-at-scale.md.
 */
export function choosePlan(visibleRows: number, exactMaxRows: number): SearchPlan {
  return visibleRows <= exactMaxRows ? 'exact' : 'ann';
}

/**
 * A caller who may see at least this share of the index searches it as if unfiltered and drops
 * what they may not see afterwards (post-filtering). LanceDB's pre-filter costs per visible row
 * (each one is fetched by row id, about 5–10 µs), while a plain scan or index probe costs per
 * ranked row: at 10k chunks all visible, pre-filtered exact search took ~110 ms and post-filtered
 * ~15 ms (`npx clearance bench search`).
 */
export const POSTFILTER_MIN_SHARE = 0.5;

/** How one LanceDB vector search runs. Every variant applies the same permission predicate. */
export interface LanceSearchPlan {
  /** `flat`: brute force over the rows (no vector index); `ivf`: the IVF index with `nprobes`. */
  index: 'flat' | 'ivf';
  nprobes: number;
  /** Rank first, filter after, with `limit` over-fetched; if fewer than wanted survive, search again pre-filtered. */
  postfilter: boolean;
  /** Rows asked of LanceDB. */
  limit: number;
  /** True when the results are the exact top of what the caller may see. */
  exact: boolean;
}

export interface VectorIndexInfo {
  kind: string;
  partitions: number;
}

/**
 * Exact for selective filters (or small tables), approximate otherwise; post-filtered for broad
 * filters. With an IVF_FLAT index, "exact" probes every partition: the partitions hold the full
 * vectors and the pre-filter skips invisible rows before any distance is computed, so this is
 * exact search over the visible rows without fetching them one by one (at 100k chunks, a caller
 * seeing 10k: ~14 ms against ~90 ms for the brute-force pre-filtered scan).
 */
export function planLanceSearch(opts: {
  totalRows: number; visibleRows: number; limit: number; exactMaxRows: number; nprobes: number; index: VectorIndexInfo | null;
}): LanceSearchPlan {
  const { totalRows, visibleRows, limit, exactMaxRows, index } = opts;
  const exact = totalRows <= exactMaxRows || choosePlan(visibleRows, exactMaxRows) === 'exact';
  const probeAll = exact && index?.kind === 'ivf_flat';
  const ivf = index !== null && (!exact || probeAll);
  const nprobes = probeAll ? index.partitions : opts.nprobes;
  if (totalRows > 0 && visibleRows >= totalRows * POSTFILTER_MIN_SHARE) {
    // Enough rows so that `limit` visible ones survive in expectation, with room for bad luck.
    const over = Math.ceil((limit * totalRows / Math.max(1, visibleRows)) * 1.5) + 10;
    // Post-filtered, exact means ranking the whole table, which a plain scan does faster than probing every partition.
    return { index: !exact && index !== null ? 'ivf' : 'flat', nprobes: opts.nprobes, postfilter: true, limit: Math.min(totalRows, over), exact };
  }
  return { index: ivf ? 'ivf' : 'flat', nprobes, postfilter: false, limit, exact };
}

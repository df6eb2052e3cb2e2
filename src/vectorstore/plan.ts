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

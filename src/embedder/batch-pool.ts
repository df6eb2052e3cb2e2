/**
 * Texts waiting for the model, from every caller at once, batched when the model is free.
 *
 * A batch costs about its size times its longest text (shorter ones are padded), so texts of
 * similar length belong together. A sync hands over a page at a time and sorting within a page
 * still pads: pages are a few hundred texts, and the first is handed over in small pieces so the
 * model can start early. Formed from everything waiting, a batch is the shortest texts of several
 * pages, as if the whole sync had been sorted at once.
 *
 * Shortest first alone would let a long text wait for as long as shorter ones keep arriving; its
 * page could not commit, and the sync stops reading ahead until it does, which leaves the model
 * idle. So an item passed over `maxPassed` times goes in the next batch, with the items nearest
 * its length; and once what is left of the oldest arrival fits in one batch, the next batch
 * finishes it (see finishingOldest).
 */
export class BatchPool<T> {
  private items: Entry<T>[] = [];
  private taken = 0;
  private seq = 0;
  private arrivals = 0;
  /** Set from an add until a batch is taken or the synchronous run it is in ends. */
  private arriving = false;

  constructor(private readonly opts: { batchSize: number; maxPassed: number }) {
    if (!(opts.batchSize >= 1)) throw new Error('batchSize must be at least 1');
  }

  get size(): number {
    return this.items.length;
  }

  add(item: T, length: number): void {
    // What is added in one synchronous run with no batch taken in between (a page's texts, or a
    // piece of the first page) is one arrival. Telling arrivals apart by batches taken alone could
    // not separate two pages: a sync reads ahead faster than the model embeds, so the next pages
    // were often all added between two batches, and a page whose texts were mixed with the next
    // page's was finished by the sync's last batch instead of committing while the model went on.
    if (!this.arriving) {
      this.arrivals++;
      this.arriving = true;
      queueMicrotask(() => { this.arriving = false; });
    }
    this.items.push({ item, length, seq: this.seq++, addedAt: this.taken, arrival: this.arrivals });
  }

  /** The next batch (empty when nothing waits): at most batchSize items, in ascending length. */
  take(): T[] {
    if (this.items.length === 0) return [];
    this.arriving = false;
    const { batchSize } = this.opts;
    const sorted = [...this.items].sort(byLength);
    // items stay in arrival order, so the first is the one waiting longest.
    const oldest = this.items[0]!;
    let batch = this.finishingOldest(sorted, oldest);
    if (!batch) {
      let start = 0;
      if (this.taken - oldest.addedAt >= this.opts.maxPassed && sorted.length > batchSize) {
        start = cheapestWindowWith(sorted, sorted.indexOf(oldest), batchSize);
      }
      batch = sorted.slice(start, start + batchSize);
    }
    const chosen = new Set(batch);
    this.items = this.items.filter((e) => !chosen.has(e));
    this.taken++;
    return batch.map((e) => e.item);
  }

  /**
   * When what is left of the oldest arrival (a page, or a piece of the first) fits in one batch,
   * that batch finishes it, topped up with the longest other items that add no padding. Its page
   * then commits while the model works on the next, instead of every page finishing in the last
   * batches together and committing one after another with the model idle.
   */
  private finishingOldest(sorted: Entry<T>[], oldest: Entry<T>): Entry<T>[] | undefined {
    const { batchSize } = this.opts;
    const group: Entry<T>[] = [];
    const others: Entry<T>[] = [];
    for (const e of sorted) (e.arrival === oldest.arrival ? group : others).push(e);
    if (group.length > batchSize || others.length === 0) return undefined;
    const longest = group[group.length - 1]!.length;
    // The longest that fit under the group's longest pad nothing; past them, the shortest of the rest pad least.
    const fits = others.findLastIndex((e) => e.length <= longest) + 1;
    const room = batchSize - group.length;
    const from = Math.max(0, fits - room);
    const chosen = new Set([...group, ...others.slice(from, from + room)]);
    return sorted.filter((e) => chosen.has(e));
  }

  /** Removes and returns the waiting items that match (a caller whose call failed). */
  remove(match: (item: T) => boolean): T[] {
    const gone = this.items.filter((e) => match(e.item));
    if (gone.length) this.items = this.items.filter((e) => !match(e.item));
    return gone.map((e) => e.item);
  }
}

const byLength = (a: Entry<unknown>, b: Entry<unknown>) => a.length - b.length || a.seq - b.seq;

interface Entry<T> {
  item: T;
  length: number;
  seq: number;
  /** How many batches had been taken when it arrived. */
  addedAt: number;
  /** Which arrival it came with (see add). */
  arrival: number;
}

/** The start of the window of `size` consecutive sorted entries that holds index `must` and pads least. */
function cheapestWindowWith(sorted: Entry<unknown>[], must: number, size: number): number {
  let best = Math.max(0, must - size + 1);
  let bestWaste = Infinity;
  for (let s = best; s <= must && s + size <= sorted.length; s++) {
    let sum = 0;
    for (let i = s; i < s + size; i++) sum += sorted[i]!.length;
    const waste = sorted[s + size - 1]!.length * size - sum;
    if (waste < bestWaste) {
      bestWaste = waste;
      best = s;
    }
  }
  return best;
}

import { BM25, keywordText, termFrequencies } from '../text/analyzer.ts';

/**
 * An in-process BM25 inverted index (Robertson–Spärck Jones IDF with Lucene's `1 +` so it is never
 * negative, k1 1.2, b 0.75: the formula and defaults LanceDB's full-text index uses). Statistics
 * cover every indexed chunk, as in LanceDB and Qdrant: who may see a chunk decides whether it is
 * returned, never how others are scored.
 */
export class Bm25Index {
  private readonly postings = new Map<string, Map<string, number>>();
  private readonly lengths = new Map<string, number>();
  private readonly termsOf = new Map<string, string[]>();
  private totalLength = 0;

  add(id: string, chunk: { sectionPath: readonly string[]; text: string }): void {
    this.remove(id);
    const tf = termFrequencies(keywordText(chunk));
    let length = 0;
    for (const [term, n] of tf) {
      let p = this.postings.get(term);
      if (!p) this.postings.set(term, (p = new Map()));
      p.set(id, n);
      length += n;
    }
    this.lengths.set(id, length);
    this.termsOf.set(id, [...tf.keys()]);
    this.totalLength += length;
  }

  remove(id: string): void {
    const terms = this.termsOf.get(id);
    if (!terms) return;
    for (const term of terms) {
      const p = this.postings.get(term);
      p?.delete(id);
      if (p && p.size === 0) this.postings.delete(term);
    }
    this.totalLength -= this.lengths.get(id) ?? 0;
    this.lengths.delete(id);
    this.termsOf.delete(id);
  }

  /** BM25 score of every chunk sharing a term with the query and passing `accept`. */
  score(terms: readonly string[], accept: (id: string) => boolean): Map<string, number> {
    const n = this.lengths.size;
    const scores = new Map<string, number>();
    if (n === 0) return scores;
    const avgdl = this.totalLength / n || 1;
    for (const term of new Set(terms)) {
      const p = this.postings.get(term);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      for (const [id, tf] of p) {
        if (!accept(id)) continue;
        const dl = this.lengths.get(id)!;
        const w = (tf * (BM25.k1 + 1)) / (tf + BM25.k1 * (1 - BM25.b + (BM25.b * dl) / avgdl));
        scores.set(id, (scores.get(id) ?? 0) + idf * w);
      }
    }
    return scores;
  }
}

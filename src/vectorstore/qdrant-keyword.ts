import type { Schemas } from '@qdrant/js-client-rest';
import type { PermissionFilter } from '../access/index.ts';
import { BM25, keywordText, queryTerms, termFrequencies } from '../text/analyzer.ts';
import { limitOf } from './points.ts';
import { qdrantPermissionFilter } from './qdrant-filter.ts';

/**
 * Qdrant's keyword channel: a named sparse vector per point whose indices are our analyzer's terms
 * (hashed to 32 bits) and whose values are BM25's term-frequency part; the collection's `idf`
 * modifier makes Qdrant multiply in the inverse document frequency from its own statistics at
 * query time, so together they score BM25. The dense vector stays the unnamed default vector, so
 * collections created before the keyword channel keep theirs and only gain this one.
 */
export const SPARSE_VECTOR = 'keywords';

/**
 * BM25 normalises term frequency by chunk length relative to the average; Qdrant's sparse values
 * are fixed when written, so a typical chunk length stands in for the live average (chunks are
 * bounded by the embedding model's window, so lengths stay within a small range).
 */
export const ASSUMED_AVERAGE_TERMS = 64;

/** FNV-1a over the term's UTF-8 bytes: stable across processes and versions, as the index requires. */
export function termIndex(term: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(term, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Sums values of terms that hash alike, since Qdrant requires unique indices. Sorted by index. */
function sparse(weights: Iterable<[string, number]>): Schemas['SparseVector'] {
  const byIndex = new Map<number, number>();
  for (const [term, w] of weights) {
    const i = termIndex(term);
    byIndex.set(i, (byIndex.get(i) ?? 0) + w);
  }
  const indices = [...byIndex.keys()].sort((a, b) => a - b);
  return { indices, values: indices.map((i) => byIndex.get(i)!) };
}

/** The sparse vector written with a chunk, or null when the chunk has no terms (nothing to match). */
export function documentSparseVector(chunk: { sectionPath: readonly string[]; text: string }): Schemas['SparseVector'] | null {
  const tf = termFrequencies(keywordText(chunk));
  if (tf.size === 0) return null;
  let length = 0;
  for (const n of tf.values()) length += n;
  const norm = BM25.k1 * (1 - BM25.b + (BM25.b * length) / ASSUMED_AVERAGE_TERMS);
  return sparse([...tf].map(([t, n]) => [t, (n * (BM25.k1 + 1)) / (n + norm)]));
}

/** Each distinct query term once; Qdrant weighs it by IDF. */
export function querySparseVector(query: string): Schemas['SparseVector'] | null {
  const terms = queryTerms(query);
  return terms.length ? sparse(terms.map((t) => [t, 1])) : null;
}

export const qdrantKeywordRequests = {
  createSparseVector: () => ({ sparse: { modifier: 'idf' as const } }) satisfies Schemas['VectorNameConfig'],

  /** `null` when nothing can match (filter grants nothing, no query terms, topK <= 0): then nothing is sent. */
  search: (query: string, filter: PermissionFilter, topK: number) => {
    const f = qdrantPermissionFilter(filter);
    const limit = limitOf(topK);
    const vector = querySparseVector(query);
    if (!f || limit === 0 || !vector) return null;
    return { query: vector, using: SPARSE_VECTOR, filter: f, limit, with_payload: true, with_vector: false } satisfies Schemas['QueryRequest'];
  },

  /** One page of points still without the keyword vector (written before the channel existed). */
  backfillPage: (offset: string | number | null, limit: number) => ({
    filter: { must_not: [{ has_vector: SPARSE_VECTOR }] },
    with_payload: ['sectionPath', 'text'],
    with_vector: false,
    limit,
    ...(offset !== null ? { offset } : {}),
  }) satisfies Schemas['ScrollRequest'],

  backfillVectors: (points: { id: string | number; sectionPath: string[]; text: string }[]) => ({
    points: points.flatMap((p) => {
      const v = documentSparseVector(p);
      return v ? [{ id: p.id, vector: { [SPARSE_VECTOR]: v } }] : [];
    }),
  }) satisfies Schemas['UpdateVectors'],
};

import type { RankedHit } from '../vectorstore/interface.ts';

export const SEARCH_MODES = ['hybrid', 'vector', 'keyword'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];

export interface FusionOptions {
  /**
   * `score`: each channel's scores min–max normalised over its candidate list, then a weighted
   * sum (a chunk missing from a list contributes 0 for it). `rrf`: reciprocal rank fusion,
   * Σ 1/(k + rank).
   */
  method: 'score' | 'rrf';
  /** Share of the dense channel in `score` fusion; the keyword channel gets the rest. */
  vectorWeight: number;
  /** RRF's rank offset (60 in the original paper). */
  rrfK: number;
}

/**
 * Default fusion, chosen by `npx clearance bench fusion --file <rankings>` over the rankings that
 * `npx clearance bench quality --save` cached on BEIR SciFact (test split, bundled offline model):
 * normalised score fusion keeps how far ahead a channel's top hits are (a BM25 hit on a rare
 * identifier scores far above the rest), which plain RRF flattens into ranks. With a weak dense
 * model the keyword channel must carry most of the weight: vector weight 0.2 gave nDCG@10 0.671
 * against keyword alone 0.664 and vector alone 0.271; 0.5 gave 0.555 and RRF (k=60) 0.530.
 * A stronger embedding model may deserve a higher weight (`fusion` in the search service input).
 */
export const DEFAULT_FUSION: FusionOptions = { method: 'score', vectorWeight: 0.2, rrfK: 60 };

function minMax(hits: RankedHit[]): Map<string, number> {
  const out = new Map<string, number>();
  if (hits.length === 0) return out;
  let lo = Infinity;
  let hi = -Infinity;
  for (const h of hits) {
    lo = Math.min(lo, h.score);
    hi = Math.max(hi, h.score);
  }
  const span = hi - lo;
  for (const h of hits) if (!out.has(h.point.id)) out.set(h.point.id, span > 0 ? (h.score - lo) / span : 1);
  return out;
}

function reciprocalRanks(hits: RankedHit[], k: number): Map<string, number> {
  const out = new Map<string, number>();
  hits.forEach((h, i) => {
    if (!out.has(h.point.id)) out.set(h.point.id, 1 / (k + i + 1));
  });
  return out;
}

/**
 * One ranked list from the dense and the keyword channel's lists (both already permission
 * filtered by the store). Each chunk appears once, with the fused score; ties keep the dense
 * channel's order, then the keyword channel's. Nothing enters that was not in one of the lists.
 */
export function fuse<H extends RankedHit>(vector: H[], keyword: H[], opts: FusionOptions = DEFAULT_FUSION): H[] {
  const [v, k, wv, wk] = opts.method === 'rrf'
    ? [reciprocalRanks(vector, opts.rrfK), reciprocalRanks(keyword, opts.rrfK), 1, 1]
    : [minMax(vector), minMax(keyword), opts.vectorWeight, 1 - opts.vectorWeight];
  const points = new Map<string, H>();
  const order = new Map<string, number>();
  for (const h of [...vector, ...keyword]) {
    if (points.has(h.point.id)) continue;
    points.set(h.point.id, h);
    order.set(h.point.id, order.size);
  }
  const fused = [...points].map(([id, h]) => ({ ...h, score: wv * (v.get(id) ?? 0) + wk * (k.get(id) ?? 0) }));
  return fused.sort((a, b) => b.score - a.score || order.get(a.point.id)! - order.get(b.point.id)!);
}

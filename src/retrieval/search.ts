import type { Attributes } from '@opentelemetry/api';
import { grantsNothing } from '../access/index.ts';
import type { RequestContext } from '../context.ts';
import { evaluateFreshness } from '../freshness/policy.ts';
import { ATTR, inSpan, tracingEnabled } from '../telemetry/tracing.ts';
import type { DocumentRecord, Source } from '../types.ts';
import type { RankedHit, VectorHit } from '../vectorstore/interface.ts';
import { DEFAULT_FUSION, fuse, type FusionOptions, type SearchMode } from './fusion.ts';
import { callerFilter, confirmHits } from './guard.ts';

export interface SearchInput {
  query: string;
  topK: number;
  /** `hybrid` (default) fuses the dense and the BM25 keyword ranking; the others use one channel. */
  mode?: SearchMode;
  /** Fusion settings for `hybrid` (benchmarks compare them; the service uses the default). */
  fusion?: FusionOptions;
  filter?: { sourceIds?: string[]; modifiedAfter?: Date; freshOnly?: boolean };
  /** Set when the request carried a valid X-Agent-Key. */
  agent?: { id: string; name: string; sourceIds: string[] };
  /** The audit record's action: `search` over HTTP, `mcp.search` for the MCP tool. */
  auditAction?: string;
}

export interface SearchResult {
  documentId: string;
  chunkId: string;
  sourceId: string;
  sourceType: string;
  title: string;
  url: string | null;
  text: string;
  /** The chunk widened with neighbouring text of its document: a readable passage. */
  context: string;
  sectionPath: string[];
  score: number;
  lastModified: string;
  freshness: { status: 'fresh' | 'stale'; ageDays: number };
}

const MAX_ROUNDS = 4;
/**
 * Each channel's candidate list in hybrid mode is at least this long, so the fused order of the
 * top ten does not depend on topK (score normalisation looks at the whole candidate list).
 */
const FUSION_CANDIDATES = 100;

/**
 * Permission-filtered search: dense vectors, BM25 keywords, or both fused (the default). Every
 * channel gets the one permission filter of this request and the store applies it before ranking;
 * the registry then confirms each hit of the (fused) list is the document's live generation and
 * that the registry's ACL passes the same filter, so a half-finished write or revocation can only
 * hide a chunk, never show one.
 */
export function search({ ctx, input }: { ctx: RequestContext; input: SearchInput }): Promise<SearchResult[]> {
  if (!tracingEnabled()) return searchVisible({ ctx, input });
  const attributes: Attributes = { 'clearance.search.mode': input.mode ?? 'hybrid', 'clearance.search.top_k': input.topK };
  if (ctx.caller.email) attributes['enduser.id'] = ctx.caller.email;
  if (input.agent) Object.assign(attributes, { [ATTR.agentId]: input.agent.id, [ATTR.agentName]: input.agent.name });
  if (input.filter?.sourceIds) attributes['clearance.search.requested_source_ids'] = input.filter.sourceIds;
  return inSpan('search', { attributes }, async (span) => {
    const results = await searchVisible({ ctx, input });
    // Which sources answered; the query text stays out of traces (it is in the audit trail).
    span.setAttributes({ 'clearance.search.results': results.length, [ATTR.sourceIds]: [...new Set(results.map((r) => r.sourceId))] });
    return results;
  });
}

async function searchVisible({ ctx, input }: { ctx: RequestContext; input: SearchInput }): Promise<SearchResult[]> {
  const filter = await callerFilter(ctx, input);
  const results: SearchResult[] = [];
  if (grantsNothing(filter)) return record(ctx, input, results);

  const mode = input.mode ?? 'hybrid';
  const vector = mode === 'keyword' ? null
    : ctx.embedder.embedQuery ? await ctx.embedder.embedQuery(input.query) : (await ctx.embedder.embed([input.query]))[0]!;
  const now = ctx.now();
  const sources = new Map<string, Source | null>();
  // Candidates are ranked on their ranking fields where the store can (LanceDB), and only the hits
  // shown are read whole: a hybrid search ranks a few hundred chunks and shows topK.
  const ranking = ctx.vectors.ranking;
  const rankDense = ranking ? ranking.search.bind(ranking) : ctx.vectors.search.bind(ctx.vectors);
  const rankKeyword = ranking ? ranking.keywordSearch.bind(ranking) : ctx.vectors.keywordSearch.bind(ctx.vectors);
  const complete = ranking ? (hits: RankedHit[]) => ranking.complete(hits) : async (hits: RankedHit[]) => hits as VectorHit[];
  let want = input.topK + 8;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const depth = mode === 'hybrid' ? Math.max(want, FUSION_CANDIDATES) : want;
    const [dense, keyword] = await Promise.all([
      vector ? rankDense(vector, filter, depth) : [],
      mode === 'vector' ? [] : rankKeyword(input.query, filter, depth),
    ]);
    const hits = mode === 'hybrid' ? fuse(dense, keyword, input.fusion ?? DEFAULT_FUSION) : mode === 'vector' ? dense : keyword;
    // The dense list holds every visible chunk until it runs short; the keyword list only those sharing a term.
    const exhausted = (mode === 'keyword' ? keyword : dense).length < depth;
    results.length = 0;
    // Hits are confirmed against the registry in rank order, a slice at a time: a hybrid list holds
    // a few hundred candidates, and reading all their documents was most of a search's work on a
    // busy service, though the first topK or so nearly always suffice. Each hit is confirmed on its
    // own, so the results are the same as confirming them all at once.
    for (let start = 0, size = input.topK + 8; start < hits.length && results.length < input.topK; start += size, size *= 4) {
      const shown: { hit: RankedHit; doc: DocumentRecord; source: Source; freshness: SearchResult['freshness'] }[] = [];
      for (const { hit, doc } of await confirmHits(ctx, filter, hits.slice(start, start + size))) {
        if (!sources.has(doc.sourceId)) sources.set(doc.sourceId, await ctx.metadata.sources.get(doc.sourceId));
        const source = sources.get(doc.sourceId);
        if (!source) continue;
        const freshness = evaluateFreshness(source.freshness, doc, now);
        if (input.filter?.freshOnly && freshness.status === 'stale') continue;
        shown.push({ hit, doc, source, freshness });
        if (results.length + shown.length === input.topK) break;
      }
      // A chunk deleted between ranking and reading is left out; the next slice makes up for it.
      const full = new Map((await complete(shown.map((s) => s.hit))).map((h) => [h.point.id, h]));
      for (const s of shown) {
        const hit = full.get(s.hit.point.id);
        if (hit) results.push(toResult(hit, s.doc, s.source, s.freshness));
      }
    }
    // Fewer hits than asked for means the store had no more visible chunks.
    if (results.length >= input.topK || exhausted) break;
    want = depth * 4;
  }
  return record(ctx, input, results);
}

function toResult(hit: VectorHit, doc: DocumentRecord, source: Source, freshness: SearchResult['freshness']): SearchResult {
  return {
    documentId: doc.id,
    chunkId: hit.point.id,
    sourceId: doc.sourceId,
    sourceType: source.type,
    title: doc.title,
    url: doc.url,
    text: hit.point.text,
    context: hit.point.context ?? hit.point.text,
    sectionPath: hit.point.sectionPath,
    score: hit.score,
    lastModified: doc.lastModified.toISOString(),
    freshness,
  };
}

/** One audit record per search: who, through which agent, what was asked, and which documents came back (by name). */
async function record(ctx: RequestContext, input: SearchInput, results: SearchResult[]): Promise<SearchResult[]> {
  const documents = [...new Map(results.map((r) => [r.documentId, { id: r.documentId, title: r.title, url: r.url, sourceId: r.sourceId }])).values()];
  await ctx.metadata.audit.append({
    user: ctx.caller.email,
    agent: input.agent?.name ?? null,
    action: input.auditAction ?? 'search',
    query: input.query,
    documentIds: documents.map((d) => d.id),
    documents,
    sourceIds: [...new Set(documents.map((d) => d.sourceId))],
    details: { topK: input.topK, results: results.length, ...(input.filter?.sourceIds ? { requestedSourceIds: input.filter.sourceIds } : {}) },
    requestId: ctx.requestId,
  });
  return results;
}

import type { RequestContext } from '../context.ts';
import { evaluateFreshness } from '../freshness/policy.ts';
import { callerPrincipals } from '../identity/index.ts';
import type { DocumentRecord, Source } from '../types.ts';
import type { VectorHit } from '../vectorstore/interface.ts';
import { buildPermissionFilter, permits } from './permissions.ts';

export interface SearchInput {
  query: string;
  topK: number;
  filter?: { sourceIds?: string[]; modifiedAfter?: Date; freshOnly?: boolean };
  /** Set when the request carried a valid X-Agent-Key. */
  agent?: { id: string; name: string; sourceIds: string[] };
}

export interface SearchResult {
  documentId: string;
  chunkId: string;
  sourceId: string;
  sourceType: string;
  title: string;
  url: string | null;
  text: string;
  sectionPath: string[];
  score: number;
  lastModified: string;
  freshness: { status: 'fresh' | 'stale'; ageDays: number };
}

const MAX_ROUNDS = 4;

/**
 * Permission-filtered semantic search. The vector store pre-filters by ACL; the registry then
 * confirms each hit is the document's live generation and that the registry ACL agrees, so a
 * half-finished write or revocation can only hide a chunk, never show one.
 */
export async function search({ ctx, input }: { ctx: RequestContext; input: SearchInput }): Promise<SearchResult[]> {
  const email = ctx.caller.email;
  const groupPrincipals = email ? await ctx.metadata.sourceGroupPrincipals(email) : [];
  const filter = buildPermissionFilter({
    principals: callerPrincipals(ctx.caller, groupPrincipals),
    agentSourceIds: input.agent?.sourceIds,
    requestedSourceIds: input.filter?.sourceIds,
    modifiedAfter: input.filter?.modifiedAfter,
  });
  const results: SearchResult[] = [];
  if (filter.principals.length === 0 || filter.sourceIds?.length === 0) return record(ctx, input, results);

  const vector = ctx.embedder.embedQuery ? await ctx.embedder.embedQuery(input.query) : (await ctx.embedder.embed([input.query]))[0]!;
  const now = ctx.now();
  const sources = new Map<string, Source | null>();
  let want = input.topK + 8;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const hits = await ctx.vectors.search(vector, filter, want);
    const docs = await loadDocs(ctx, hits);
    results.length = 0;
    for (const hit of hits) {
      const doc = docs.get(hit.point.documentId);
      if (!doc || doc.status !== 'indexed' || doc.generation !== hit.point.generation) continue;
      if (!permits(filter, doc.acl, doc.sourceId, doc.lastModified.getTime())) continue;
      if (!sources.has(doc.sourceId)) sources.set(doc.sourceId, await ctx.metadata.getSource(doc.sourceId));
      const freshness = evaluateFreshness(sources.get(doc.sourceId)?.freshness ?? null, doc, now);
      if (input.filter?.freshOnly && freshness.status === 'stale') continue;
      results.push(toResult(hit, doc, freshness));
      if (results.length === input.topK) break;
    }
    // Fewer hits than asked for means the store had no more visible chunks.
    if (results.length >= input.topK || hits.length < want) break;
    want *= 4;
  }
  return record(ctx, input, results);
}

async function loadDocs(ctx: RequestContext, hits: VectorHit[]): Promise<Map<string, DocumentRecord>> {
  const ids = [...new Set(hits.map((h) => h.point.documentId))];
  const docs = ids.length ? await ctx.metadata.getDocumentsByIds(ids) : [];
  return new Map(docs.map((d) => [d.id, d]));
}

function toResult(hit: VectorHit, doc: DocumentRecord, freshness: SearchResult['freshness']): SearchResult {
  return {
    documentId: doc.id,
    chunkId: hit.point.id,
    sourceId: doc.sourceId,
    sourceType: hit.point.sourceType,
    title: doc.title,
    url: doc.url,
    text: hit.point.text,
    sectionPath: hit.point.sectionPath,
    score: hit.score,
    lastModified: doc.lastModified.toISOString(),
    freshness,
  };
}

async function record(ctx: RequestContext, input: SearchInput, results: SearchResult[]): Promise<SearchResult[]> {
  await ctx.metadata.insertAudit({
    user: ctx.caller.email,
    agent: input.agent?.name ?? null,
    action: 'search',
    query: input.query,
    documentIds: [...new Set(results.map((r) => r.documentId))],
    requestId: ctx.requestId,
  });
  return results;
}

import { matches } from '../access/index.ts';
import type { RequestContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { evaluateFreshness } from '../freshness/policy.ts';
import { ATTR, activeSpan } from '../telemetry/tracing.ts';
import { callerFilter } from './guard.ts';

export interface FetchInput {
  documentId: string;
  /** Set when the request carried a valid X-Agent-Key. */
  agent?: { id: string; name: string; sourceIds: string[] };
  /** The audit record's action: `document.fetch` over HTTP, `mcp.fetch_document` for the MCP tool. */
  auditAction?: string;
}

/**
 * A document's metadata and its chunks in order, under the search visibility rule: the registry
 * row must be indexed and pass the caller's permission filter (kill switches and agent scope
 * included). Anything else is the same 404 as a document that does not exist. Audited like a search.
 */
export async function fetchDocument({ ctx, input }: { ctx: RequestContext; input: FetchInput }) {
  const action = input.auditAction ?? 'document.fetch';
  const audit = (outcome: 'ok' | 'denied', doc?: { id: string; title: string; url: string | null; sourceId: string }, reason?: string) =>
    ctx.metadata.audit.append({
      user: ctx.caller.email, agent: input.agent?.name ?? null, action, target: input.documentId, outcome, query: null,
      documentIds: doc ? [doc.id] : [], documents: doc ? [doc] : [], sourceIds: doc ? [doc.sourceId] : [],
      details: reason ? { reason } : null, requestId: ctx.requestId,
    });
  const [filter, [doc]] = await Promise.all([callerFilter(ctx, { agent: input.agent }), ctx.metadata.documents.byIds([input.documentId])]);
  if (!doc || doc.status !== 'indexed' || !matches(filter, { documentId: doc.id, sourceId: doc.sourceId, lastModified: doc.lastModified.getTime(), acl: doc.acl })) {
    await audit('denied', undefined, doc ? 'not visible to the caller' : 'no such document');
    throw notFound('Document');
  }
  activeSpan().setAttribute(ATTR.sourceId, doc.sourceId);
  const [chunks, source] = await Promise.all([ctx.vectors.documentChunks(doc.id, doc.generation), ctx.metadata.sources.get(doc.sourceId)]);
  await audit('ok', { id: doc.id, title: doc.title, url: doc.url, sourceId: doc.sourceId });
  return {
    documentId: doc.id,
    sourceId: doc.sourceId,
    sourceType: source?.type ?? null,
    title: doc.title,
    url: doc.url,
    path: doc.path,
    mimeType: doc.mimeType,
    owner: doc.owner,
    labels: doc.labels,
    lastModified: doc.lastModified.toISOString(),
    indexedAt: doc.indexedAt.toISOString(),
    freshness: evaluateFreshness(source?.freshness ?? null, doc, ctx.now()),
    chunks: chunks.map((c) => ({ chunkId: c.id, index: c.chunkIndex, sectionPath: c.sectionPath, text: c.text })),
  };
}

import { buildPermissionFilter, callerPrincipals, matches, type PermissionFilter } from '../access/index.ts';
import type { RequestContext } from '../context.ts';
import type { DocumentRecord } from '../types.ts';
import type { RankedHit } from '../vectorstore/interface.ts';

/** What a search may be narrowed by, besides the caller's own permissions. */
export interface SearchScope {
  filter?: { sourceIds?: string[]; modifiedAfter?: Date };
  /** Set when the request carried a valid X-Agent-Key. */
  agent?: { sourceIds: string[] };
}

/**
 * The caller's permission filter for this request: the one builder, fed with everything the caller
 * is. The kill switches (disabled sources, quarantined documents) are read here on every request,
 * so flipping one takes effect on the next search without touching a vector.
 */
export async function callerFilter(ctx: Pick<RequestContext, 'metadata' | 'caller'>, scope: SearchScope): Promise<PermissionFilter> {
  const [groupPrincipals, hidden] = await Promise.all([ctx.metadata.groups.principalsOf(ctx.caller.email), ctx.metadata.switches.hidden()]);
  return buildPermissionFilter({
    principals: callerPrincipals(ctx.caller, groupPrincipals),
    agentSourceIds: scope.agent?.sourceIds,
    requestedSourceIds: scope.filter?.sourceIds,
    excludedSourceIds: hidden.sourceIds,
    excludedDocumentIds: hidden.documentIds,
    modifiedAfter: scope.filter?.modifiedAfter,
  });
}

/**
 * The registry re-check after a store search: a hit stands only if its document is indexed, the
 * hit is of the document's live generation, and the registry's own ACL, source and modification
 * time pass the same filter. The store's payload can lag the registry (a crash between the two
 * writes, a revocation on its way), so the stricter of the two always wins. Order is kept.
 */
export async function confirmHits<H extends RankedHit>(ctx: Pick<RequestContext, 'metadata'>, filter: PermissionFilter, hits: H[]): Promise<{ hit: H; doc: DocumentRecord }[]> {
  const ids = [...new Set(hits.map((h) => h.point.documentId))];
  const docs = new Map((await ctx.metadata.documents.byIds(ids)).map((d) => [d.id, d]));
  const out: { hit: H; doc: DocumentRecord }[] = [];
  for (const hit of hits) {
    const doc = docs.get(hit.point.documentId);
    if (!doc || doc.status !== 'indexed' || doc.generation !== hit.point.generation) continue;
    if (!matches(filter, { documentId: doc.id, sourceId: doc.sourceId, lastModified: doc.lastModified.getTime(), acl: doc.acl })) continue;
    out.push({ hit, doc });
  }
  return out;
}

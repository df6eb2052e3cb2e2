import { explainAccess, normalizeEmail, parsePrincipal, type Principal } from '../access/index.ts';
import type { RequestContext } from '../context.ts';
import { badRequest } from '../errors.ts';
import type { DocumentRecord } from '../types.ts';

/** The completed sync a document's permissions rest on: its source's newest successful run. */
async function asOf(ctx: Pick<RequestContext, 'metadata'>, sourceId: string): Promise<{ runId: string; finishedAt: string } | null> {
  const run = (await ctx.metadata.runs.list(sourceId, 50)).find((r) => r.status === 'succeeded' && r.finishedAt);
  return run ? { runId: run.id, finishedAt: run.finishedAt!.toISOString() } : null;
}

/** Source-group entries of an ACL and their synced members (empty: nobody is known to be in it). */
async function groupMembers(ctx: Pick<RequestContext, 'metadata'>, acl: readonly string[]): Promise<Map<Principal, string[]>> {
  const out = new Map<Principal, string[]>();
  for (const p of acl) {
    const parsed = parsePrincipal(p);
    if (parsed?.kind === 'sgroup') out.set(p, await ctx.metadata.groups.members(parsed.sourceId, parsed.groupId));
  }
  return out;
}

async function indexedDocument(ctx: Pick<RequestContext, 'metadata'>, id: string): Promise<DocumentRecord | null> {
  const [doc] = await ctx.metadata.documents.byIds([id]);
  return doc ?? null;
}

/**
 * Why a user may (or may not) read a document, as of the last completed sync: the same filter and
 * rule as search (src/access explainAccess), fed from the same stores as the search guard.
 */
export async function explainDocumentAccess({ ctx, input }: {
  ctx: Pick<RequestContext, 'metadata'>;
  input: { user: string; documentId: string; groups?: string[]; agentId?: string };
}) {
  const email = normalizeEmail(input.user);
  if (email === null) throw badRequest('user: an email address is required');
  const doc = await indexedDocument(ctx, input.documentId);
  const live = doc && doc.status === 'indexed' ? doc : null;
  const agent = input.agentId ? await ctx.metadata.agents.get(input.agentId) : null;
  if (input.agentId && !agent) throw badRequest('agentId: no such agent');
  const [memberships, hidden, groups] = await Promise.all([
    ctx.metadata.groups.membershipsOf(email),
    ctx.metadata.switches.hidden(),
    groupMembers(ctx, live?.acl ?? []),
  ]);
  const explanation = explainAccess({
    user: { email, groups: input.groups ?? [] },
    memberships,
    document: live && { id: live.id, sourceId: live.sourceId, lastModified: live.lastModified.getTime(), acl: live.acl },
    hidden,
    agentSourceIds: agent ? agent.sourceIds : undefined,
    resolvedGroups: [...groups].filter(([, m]) => m.length > 0).map(([p]) => p),
  });
  return {
    ...explanation,
    documentId: input.documentId,
    user: email,
    groups: input.groups ?? [],
    asOf: live ? (await asOf(ctx, live.sourceId))?.finishedAt ?? null : null,
    document: live ? { id: live.id, title: live.title, url: live.url, sourceId: live.sourceId } : null,
  };
}

/** The document's resolved ACL and every known user it reaches (listed users and synced source-group members). */
export async function documentAccess({ ctx, input }: { ctx: Pick<RequestContext, 'metadata'>; input: { documentId: string } }) {
  const doc = await indexedDocument(ctx, input.documentId);
  if (!doc || doc.status === 'deleted') return null;
  const groups = await groupMembers(ctx, doc.acl);
  const users = new Set<string>();
  const open: Principal[] = [];
  for (const p of doc.acl) {
    const parsed = parsePrincipal(p);
    if (parsed?.kind === 'user') users.add(parsed.email);
    else if (parsed?.kind === 'sgroup') for (const m of groups.get(p) ?? []) users.add(m);
    // IdP groups, domains and everyone reach people the service cannot list.
    else open.push(p);
  }
  const [quarantine, source] = await Promise.all([ctx.metadata.switches.quarantineOf(doc.id), ctx.metadata.sources.get(doc.sourceId)]);
  return {
    documentId: doc.id,
    title: doc.title,
    url: doc.url,
    sourceId: doc.sourceId,
    principals: doc.acl,
    groups: [...groups].map(([principal, members]) => ({ principal, members })),
    users: [...users].sort(),
    /** Principals whose members cannot be enumerated (IdP groups, domains, everyone). */
    unenumerable: open,
    quarantined: quarantine ? { reason: quarantine.reason, by: quarantine.actor, at: quarantine.at.toISOString() } : null,
    sourceEnabled: source?.enabled ?? false,
    asOf: (await asOf(ctx, doc.sourceId))?.finishedAt ?? null,
  };
}

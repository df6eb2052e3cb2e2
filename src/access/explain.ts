import { buildPermissionFilter, matches } from './filter.ts';
import { callerPrincipals, type Principal } from './principals.ts';

/** Why a user cannot read a document, most specific first. */
export type Denial = 'not_indexed' | 'document_quarantined' | 'source_disabled' | 'agent_scope' | 'no_matching_principal';

export interface ExplainInput {
  user: { email: string | null; groups: readonly string[] };
  /** Source groups containing the user, each with the nested groups leading to it (innermost first). */
  memberships: readonly { principal: Principal; via: readonly Principal[] }[];
  /** Null when there is no such document, or it is not (or no longer) indexed. */
  document: { id: string; sourceId: string; lastModified: number; acl: readonly string[] } | null;
  hidden: { sourceIds: readonly string[]; documentIds: readonly string[] };
  /** The agent key's sources, when the question is asked for an agent. */
  agentSourceIds?: readonly string[];
  /** Source-group principals that have at least one known member (from the last sync). */
  resolvedGroups?: readonly Principal[];
}

export interface Explanation {
  allowed: boolean;
  /** The ACL entries that grant access, each with the chain of groups through which the user holds it. */
  reasons: { principal: Principal; via: Principal[] }[];
  denial?: Denial;
  /** Every reason that applies, not only the first. */
  denials?: Denial[];
  /** Source-group entries of the ACL with no known member: unresolved, they grant nobody. */
  unresolved?: Principal[];
}

/**
 * Explains one visibility decision with the very filter and rule search uses: `allowed` is
 * `matches()` on the filter `buildPermissionFilter` makes for this user, so the explanation can
 * never disagree with what a search would return. The reasons and denials only describe which
 * part of that filter decided.
 */
export function explainAccess(input: ExplainInput): Explanation {
  const doc = input.document;
  if (!doc) return { allowed: false, reasons: [], denial: 'not_indexed', denials: ['not_indexed'] };
  const principals = callerPrincipals({ email: input.user.email, groups: [...input.user.groups] }, input.memberships.map((m) => m.principal));
  const filter = buildPermissionFilter({
    principals,
    agentSourceIds: input.agentSourceIds,
    excludedSourceIds: input.hidden.sourceIds,
    excludedDocumentIds: input.hidden.documentIds,
  });
  const allowed = matches(filter, { documentId: doc.id, sourceId: doc.sourceId, lastModified: doc.lastModified, acl: doc.acl });
  const via = new Map(input.memberships.map((m) => [m.principal, [...m.via]]));
  const reasons = doc.acl.filter((p) => principals.includes(p)).map((principal) => ({ principal, via: via.get(principal) ?? [] }));
  const resolved = input.resolvedGroups;
  const unresolved = resolved ? doc.acl.filter((p) => p.startsWith('sgroup:') && !resolved.includes(p)) : [];
  if (allowed) return { allowed, reasons };
  const denials: Denial[] = [];
  if (input.hidden.documentIds.includes(doc.id)) denials.push('document_quarantined');
  if (input.hidden.sourceIds.includes(doc.sourceId)) denials.push('source_disabled');
  if (input.agentSourceIds && !input.agentSourceIds.includes(doc.sourceId)) denials.push('agent_scope');
  if (reasons.length === 0) denials.push('no_matching_principal');
  return { allowed, reasons, denial: denials[0] ?? 'no_matching_principal', denials, ...(unresolved.length ? { unresolved } : {}) };
}

import type { Principal } from '../types.ts';
import type { VectorFilter } from '../vectorstore/interface.ts';

export interface PermissionScope {
  /** Everything the caller is, from callerPrincipals(). Empty → the caller sees nothing. */
  principals: Principal[];
  /** Sources the agent key covers; undefined when no agent key was presented. */
  agentSourceIds?: string[];
  /** Sources the request asked for; undefined → all. */
  requestedSourceIds?: string[];
  modifiedAfter?: Date;
}

/**
 * THE permission filter. Every search path (HTTP, MCP, CLI, benchmarks) goes through this one
 * function, and every vector store translates its result literally. Restrictions only ever
 * intersect: a request can narrow what the agent and the user may see, never widen it.
 */
export function buildPermissionFilter(scope: PermissionScope): VectorFilter {
  const principals = [...new Set(scope.principals.filter(isPrincipal))].sort();
  let sourceIds: string[] | undefined;
  for (const list of [scope.agentSourceIds, scope.requestedSourceIds]) {
    if (!list) continue;
    sourceIds = sourceIds ? sourceIds.filter((id) => list.includes(id)) : [...new Set(list)];
  }
  const filter: VectorFilter = { principals };
  if (sourceIds) filter.sourceIds = sourceIds.sort();
  if (scope.modifiedAfter) filter.modifiedAfter = scope.modifiedAfter.getTime();
  return filter;
}

/** The same rule, applied to an ACL held in memory (the registry re-check after vector search). */
export function permits(filter: VectorFilter, acl: Principal[], sourceId: string, lastModified: number): boolean {
  if (filter.sourceIds && !filter.sourceIds.includes(sourceId)) return false;
  if (filter.modifiedAfter !== undefined && lastModified < filter.modifiedAfter) return false;
  return acl.some((p) => filter.principals.includes(p));
}

const PRINCIPAL = /^(user:[^\s]+@[^\s]+|group:.+|sgroup:[^/]+\/.+|domain:[^\s]+|everyone)$/;
export const isPrincipal = (p: string) => PRINCIPAL.test(p);

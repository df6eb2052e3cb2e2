import { isPrincipal, type Principal } from './principals.ts';

/**
 * The permission filter: the only thing a vector store accepts to decide which chunks a search may
 * see, and the same rule the registry re-check applies. It can only be produced by
 * `buildPermissionFilter` (the brand is a module-private symbol, and a run-time registry catches
 * casts), so no search path can hand a store a filter someone wrote by hand.
 *
 * Semantics every store implements:
 *  - a chunk matches only if its ACL shares at least one entry with `principals`; an empty
 *    `principals` list matches nothing (fail closed);
 *  - `sourceIds`, when present, restricts to those sources; an empty list matches nothing;
 *  - `excludedSourceIds` / `excludedDocumentIds` never match (disabled sources, quarantined documents);
 *  - `modifiedAfter` (epoch ms), when present, keeps chunks with lastModified >= it.
 */
declare const sealed: unique symbol;

export interface PermissionFilter {
  readonly principals: readonly Principal[];
  readonly sourceIds?: readonly string[];
  readonly excludedSourceIds?: readonly string[];
  readonly excludedDocumentIds?: readonly string[];
  readonly modifiedAfter?: number;
  readonly [sealed]: true;
}

export interface PermissionScope {
  /** Everything the caller is, from callerPrincipals(). Empty → the caller sees nothing. */
  principals: readonly string[];
  /** Sources the agent key covers; undefined when no agent key was presented. */
  agentSourceIds?: readonly string[];
  /** Sources the request asked for; undefined → all. */
  requestedSourceIds?: readonly string[];
  /** Sources nobody may see right now (disabled by an admin). */
  excludedSourceIds?: readonly string[];
  /** Documents nobody may see right now (quarantined). */
  excludedDocumentIds?: readonly string[];
  modifiedAfter?: Date;
}

const issued = new WeakSet<object>();

const sortedUnique = (xs: readonly string[]) => [...new Set(xs.filter((x) => typeof x === 'string'))].sort();

/**
 * THE permission filter. Every search path (HTTP, MCP, CLI, benchmarks; vector, keyword and
 * hybrid) goes through this one function, and every vector store translates its result literally.
 * Restrictions only ever intersect: a request can narrow what the agent and the user may see,
 * never widen it.
 */
export function buildPermissionFilter(scope: PermissionScope): PermissionFilter {
  const principals = sortedUnique(scope.principals.filter(isPrincipal));
  let sourceIds: string[] | undefined;
  for (const list of [scope.agentSourceIds, scope.requestedSourceIds]) {
    if (!list) continue;
    sourceIds = sourceIds ? sourceIds.filter((id) => list.includes(id)) : sortedUnique(list);
  }
  const filter: {
    principals: readonly string[]; sourceIds?: readonly string[]; excludedSourceIds?: readonly string[];
    excludedDocumentIds?: readonly string[]; modifiedAfter?: number;
  } = { principals: Object.freeze(principals) };
  if (sourceIds) filter.sourceIds = Object.freeze(sourceIds);
  if (scope.excludedSourceIds?.length) filter.excludedSourceIds = Object.freeze(sortedUnique(scope.excludedSourceIds));
  if (scope.excludedDocumentIds?.length) filter.excludedDocumentIds = Object.freeze(sortedUnique(scope.excludedDocumentIds));
  if (scope.modifiedAfter) {
    const t = scope.modifiedAfter.getTime();
    // An invalid date keeps nothing rather than everything.
    filter.modifiedAfter = Number.isNaN(t) ? Infinity : t;
  }
  const out = Object.freeze(filter) as PermissionFilter;
  issued.add(out);
  return out;
}

/** Throws unless `filter` came from buildPermissionFilter (stores call this before every search). */
export function assertPermissionFilter(filter: unknown): asserts filter is PermissionFilter {
  // A WeakSet holds only objects: anything else (null, a string) is simply not in it.
  if (!issued.has(filter as object)) {
    throw new TypeError('a search needs a PermissionFilter built by buildPermissionFilter');
  }
}

/** True when the filter cannot match anything, so a store need not be asked at all. */
export function grantsNothing(filter: PermissionFilter): boolean {
  assertPermissionFilter(filter);
  return filter.principals.length === 0 || filter.sourceIds?.length === 0 || filter.modifiedAfter === Infinity;
}

export interface Guarded {
  documentId: string;
  sourceId: string;
  /** Epoch milliseconds of the document's last modification upstream. */
  lastModified: number;
  acl: readonly string[];
}

/**
 * The rule applied to something held in memory: the registry re-check after a store search, and
 * the in-memory store. Vector stores express the same rule in their own query language.
 */
export function matches(filter: PermissionFilter, item: Guarded): boolean {
  assertPermissionFilter(filter);
  if (filter.sourceIds && !filter.sourceIds.includes(item.sourceId)) return false;
  if (filter.excludedSourceIds?.includes(item.sourceId)) return false;
  if (filter.excludedDocumentIds?.includes(item.documentId)) return false;
  if (filter.modifiedAfter !== undefined && !(item.lastModified >= filter.modifiedAfter)) return false;
  return item.acl.some((p) => filter.principals.includes(p));
}

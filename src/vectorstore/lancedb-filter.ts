import { assertPermissionFilter, type PermissionFilter } from '../access/index.ts';

/** A SQL string literal for LanceDB's DataFusion filter parser, which knows no backslash escapes. */
export function sqlString(value: string): string {
  if (typeof value !== 'string') throw new TypeError('SQL literal must be a string');
  return `'${value.replace(/'/g, "''")}'`;
}

export const sqlList = (values: readonly string[]) => values.map(sqlString).join(', ');

/**
 * The permission filter as the WHERE clause of a LanceDB query (the permission module's rule,
 * spelled in SQL). `null` when nothing can match, so the caller does not query at all. The
 * adapter applies it as a prefilter, so `limit` counts only chunks the caller may see.
 */
export function lancePermissionPredicate(filter: PermissionFilter): string | null {
  assertPermissionFilter(filter);
  if (filter.principals.length === 0) return null;
  const parts = [`array_has_any(acl, [${sqlList(filter.principals)}])`];
  if (filter.sourceIds) {
    if (filter.sourceIds.length === 0) return null;
    parts.push(`sourceId IN (${sqlList(filter.sourceIds)})`);
  }
  if (filter.excludedSourceIds?.length) parts.push(`sourceId NOT IN (${sqlList(filter.excludedSourceIds)})`);
  if (filter.excludedDocumentIds?.length) parts.push(`documentId NOT IN (${sqlList(filter.excludedDocumentIds)})`);
  if (filter.modifiedAfter !== undefined) {
    // The builder turns an invalid date into +Infinity, which keeps nothing (and is no SQL literal).
    if (filter.modifiedAfter === Infinity) return null;
    parts.push(`lastModified >= ${filter.modifiedAfter}`);
  }
  return parts.map((p) => `(${p})`).join(' AND ');
}

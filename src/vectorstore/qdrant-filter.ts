import type { Schemas } from '@qdrant/js-client-rest';
import { assertPermissionFilter, type PermissionFilter } from '../access/index.ts';

export type FieldCondition =
  | { key: string; match: { value: string | number } }
  | { key: string; match: { any: string[] } }
  | { key: string; range: { gte: number } };
export interface QdrantFilter {
  must?: FieldCondition[];
  must_not?: FieldCondition[];
}
// Compile-time proof that the narrow filter shape above is a valid Qdrant filter (types only).
type Assert<T extends true> = T;
export type QdrantFilterIsValid = Assert<QdrantFilter extends Schemas['Filter'] ? true : false>;

/**
 * The permission filter as a Qdrant filter (the permission module's rule, spelled in Qdrant's
 * JSON). `null` when nothing can match, so no request is sent. JSON has no Infinity: the builder's
 * unreachable time bound (+Infinity) matches nothing.
 */
export function qdrantPermissionFilter(filter: PermissionFilter): QdrantFilter | null {
  assertPermissionFilter(filter);
  if (filter.principals.length === 0) return null;
  const must: FieldCondition[] = [{ key: 'acl', match: { any: [...filter.principals] } }];
  if (filter.sourceIds) {
    if (filter.sourceIds.length === 0) return null;
    must.push({ key: 'sourceId', match: { any: [...filter.sourceIds] } });
  }
  if (filter.modifiedAfter !== undefined) {
    if (filter.modifiedAfter === Infinity) return null;
    must.push({ key: 'lastModified', range: { gte: filter.modifiedAfter } });
  }
  const mustNot: FieldCondition[] = [];
  if (filter.excludedSourceIds?.length) mustNot.push({ key: 'sourceId', match: { any: [...filter.excludedSourceIds] } });
  if (filter.excludedDocumentIds?.length) mustNot.push({ key: 'documentId', match: { any: [...filter.excludedDocumentIds] } });
  return mustNot.length ? { must, must_not: mustNot } : { must };
}

import { createHash } from 'node:crypto';
import { sha256 } from '../hash.ts';
import type { Principal } from '../types.ts';

export { sha256 } from '../hash.ts';

/** Order- and duplicate-insensitive, so a re-ordered but equal ACL is "unchanged". */
export function aclHash(principals: Principal[]): string {
  return sha256([...new Set(principals)].sort().join('\n'));
}

/** Deterministic UUID from a name, so a retried write targets the same row/point (idempotence). */
export function stableUuid(...parts: (string | number)[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5-style
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export const documentIdFor = (sourceId: string, externalId: string) => stableUuid('doc', sourceId, externalId);
export const chunkIdFor = (documentId: string, generation: number, index: number) =>
  stableUuid('chunk', documentId, generation, index);

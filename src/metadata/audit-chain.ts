import { sha256 } from '../hash.ts';
import type { AuditRecord } from './interface.ts';

/** The `prevHash` of the first record ever written (and the anchor of an empty chain). */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level, so a jsonb round trip (which reorders keys) hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The hash a record carries: sha256 over the canonical JSON of every field but the hash itself,
 * the previous record's hash included. Changing any field, or the order, changes it.
 */
export function auditHash(r: Omit<AuditRecord, 'hash' | 'user'>): string {
  return sha256(canonicalJson({
    seq: r.seq, id: r.id, at: r.at.toISOString(), actor: r.actor, agent: r.agent, action: r.action,
    target: r.target, outcome: r.outcome, query: r.query, documentIds: r.documentIds, documents: r.documents,
    sourceIds: r.sourceIds, details: r.details, requestId: r.requestId, prevId: r.prevId, prevHash: r.prevHash,
  }));
}

export interface ChainLink {
  seq: number;
  id: string | null;
  hash: string;
}

/**
 * Checks one record against the link before it (the anchor for the first retained record) and
 * names the record to blame: the record itself when its own hash does not match its content; the
 * missing record when a predecessor was deleted (a gap in seq, or `prevId` naming another record);
 * the previous record when it was rewritten together with its hash, which leaves its successor's
 * `prevHash` pointing at the original.
 */
export function checkLink(prev: ChainLink, r: AuditRecord): { brokenId: string | null; brokenSeq: number; reason: string } | null {
  if (auditHash(r) !== r.hash) return { brokenId: r.id, brokenSeq: r.seq, reason: 'record content does not match its hash' };
  if (r.seq !== prev.seq + 1 || r.prevId !== prev.id) {
    return { brokenId: r.prevId, brokenSeq: r.seq - 1, reason: 'the record before this one is missing' };
  }
  if (r.prevHash !== prev.hash) return { brokenId: prev.id, brokenSeq: prev.seq, reason: 'record was changed after its successor was written' };
  return null;
}

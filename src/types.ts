/**
 * Domain types shared by every layer. Principals are plain strings so that every vector store can
 * index them as a keyword array and filter with "any of":
 *   user:<email, lower-case>      a person
 *   group:<name>                  an IdP group as it appears in the caller's groups claim
 *   sgroup:<sourceId>/<groupId>   a group defined by a source (Entra, Google, Confluence); membership is synced
 *   domain:<domain>               everyone whose email is in that domain
 *   everyone                      any authenticated caller
 * Anything else is not a principal and grants nothing.
 */
export type Principal = string;

export type SourceType = 'filesystem' | 'sharepoint' | 'google_drive' | 'confluence';

export interface FreshnessRule {
  match: { pathGlob?: string; titleRegex?: string; label?: string; mimeType?: string };
  maxAgeDays: number | null;
}
export interface FreshnessPolicy {
  maxAgeDays: number | null;
  rules?: FreshnessRule[];
}

export interface Source {
  id: string;
  name: string;
  type: SourceType;
  config: Record<string, unknown>;
  schedule: { intervalSeconds: number } | null;
  freshness: FreshnessPolicy | null;
  status: 'active' | 'paused' | 'deleting';
  /** False: disabled by an admin (kill switch): its documents are hidden from every search and it does not sync. */
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type RunMode = 'incremental' | 'full';
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface RunStats {
  seen: number;
  added: number;
  updated: number;
  aclUpdated: number;
  deleted: number;
  unchanged: number;
  failed: number;
  chunksEmbedded: number;
  /** Files recorded but not indexed (unsupported type, too large); not counted as failures. */
  skipped: number;
}

export const emptyStats = (): RunStats => ({
  seen: 0, added: 0, updated: 0, aclUpdated: 0, deleted: 0, unchanged: 0, failed: 0, chunksEmbedded: 0, skipped: 0,
});

export interface Run {
  id: string;
  sourceId: string;
  mode: RunMode;
  status: RunStatus;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
  stats: RunStats;
  /** Things a person should look at that did not fail the run (bad ACL file, unreadable document). */
  warnings: string[];
  /** When the run answers change notifications: the earliest one it covers (null otherwise). */
  notifiedAt?: Date | null;
}

/** 'pending': the row exists while a new document's first chunks are written; never searchable. */
export type DocumentStatus = 'indexed' | 'pending' | 'failed' | 'skipped' | 'deleted';

export interface DocumentRecord {
  id: string;
  sourceId: string;
  externalId: string;
  title: string;
  url: string | null;
  path: string | null;
  mimeType: string | null;
  owner: string | null;
  labels: string[];
  lastModified: Date;
  /** Cheap upstream change token (etag, cTag, mtime+size): when equal, content is not fetched at all. */
  contentVersion: string | null;
  /** sha256 of the fetched bytes. */
  contentHash: string | null;
  aclHash: string;
  acl: Principal[];
  /** Chunks of this generation are the live ones; any other generation in the vector store is garbage. */
  generation: number;
  chunkCount: number;
  status: DocumentStatus;
  error: string | null;
  indexedAt: Date;
}

/** The caller, resolved once per request. */
export interface Caller {
  kind: 'user' | 'admin-token';
  email: string | null;
  groups: string[];
  isAdmin: boolean;
  isCompliance: boolean;
}

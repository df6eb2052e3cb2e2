import type { Principal } from '../types.ts';

/** What a connector knows about a document without downloading it. */
export interface DocumentMeta {
  externalId: string;
  title: string;
  url: string | null;
  /** Path inside the source, '/'-separated (used by freshness path globs and for display). */
  path: string | null;
  mimeType: string | null;
  lastModified: Date;
  owner: string | null;
  labels?: string[];
  size?: number;
  /** Cheap change token from upstream (eTag/cTag, mtime+size). Equal token → content is not fetched. */
  contentVersion: string | null;
}

export interface FetchedContent {
  bytes: Buffer;
  mimeType: string | null;
}

/**
 * The effective read ACL of a document, already resolved by the connector (inheritance applied).
 * `principals` empty → nobody may read it. `problems` lists what could not be resolved; those
 * entries grant nothing and are surfaced as run warnings.
 */
export interface ResolvedAcl {
  principals: Principal[];
  problems?: string[];
}

export type Change =
  | { kind: 'upsert'; doc: DocumentMeta; acl: ResolvedAcl; fetch: () => Promise<FetchedContent> }
  | { kind: 'acl'; externalId: string; acl: ResolvedAcl }
  | { kind: 'delete'; externalId: string };

export interface ChangePage {
  changes: Change[];
  /**
   * Cursor to resume from once this page is durably applied; null while a full enumeration is
   * still in progress and cannot resume mid-way.
   */
  cursor: string | null;
  warnings?: string[];
}

/** Transitive members of a source-defined group; the principal is `sgroup:<sourceId>/<groupId>`. */
export interface GroupMembers {
  groupId: string;
  memberEmails: string[];
  /** Groups nested directly in this one, when the source says (only used to explain access). */
  memberGroupIds?: string[];
}

export interface ConnectorContext {
  sourceId: string;
  signal?: AbortSignal;
}

export interface Connector {
  readonly type: string;
  /**
   * True when the connector has no delta API and always enumerates everything (filesystem):
   * the engine then prunes documents not seen in every run, not only in full runs.
   */
  readonly enumeratesEverything: boolean;
  /** Verifies credentials and configuration; throws an Error whose message is shown to the admin. */
  test(): Promise<void>;
  /**
   * Streams changes. `cursor: null` or `full: true` → every document (the engine prunes the
   * rest afterwards). Throws CursorExpiredError when an incremental cursor is no longer valid.
   */
  changes(opts: { cursor: string | null; full: boolean }): AsyncIterable<ChangePage>;
  /**
   * Transitive memberships of every group the source uses in ACLs; omit when the source has none.
   * `knownGroupIds`: group ids the engine already holds for this source, so a connector whose
   * incremental run saw no ACL mentioning a group can still refresh (or empty) its membership.
   */
  groups?(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers>;
  /** Change notifications the upstream can push (absent: scheduled syncs only). */
  readonly watch?: ChangeWatch;
}

export type ConnectorFactory = (args: {
  sourceId: string;
  config: Record<string, unknown>;
  credentials: Record<string, unknown> | null;
}) => Connector;

/** A subscription or channel as the upstream knows it (the lifecycle keeps the rest). */
export interface WatchHandle {
  externalId: string;
  resource: string;
  expiresAt: Date;
  /** Upstream details needed to renew or remove it later (e.g. Drive's resourceId). */
  data?: Record<string, unknown>;
}

/**
 * Change notifications a connector can register upstream (Graph subscriptions, Drive channels).
 * The lifecycle (src/notifications/lifecycle.ts) decides when; the connector only speaks the API.
 */
export interface ChangeWatch {
  /** Names the subscriptions in the metadata store ('graph', 'drive'). */
  readonly kind: string;
  /** The longest lifetime the upstream grants; renewal happens well before it ends. */
  readonly maxLifetimeMs: number;
  /** What should be watched now (one per drive, per shared drive, …). */
  resources(): Promise<string[]>;
  /** Registers a subscription/channel for `resource` delivering to `address`, proving itself with `secret`. */
  create(resource: string, opts: { id: string; address: string; secret: string; expiresAt: Date }): Promise<WatchHandle>;
  /** Extends it in place; absent when the upstream cannot (Drive channels are replaced instead). */
  renew?(handle: WatchHandle, expiresAt: Date): Promise<{ expiresAt: Date }>;
  /** Removes it upstream; one that is already gone is not an error. */
  remove(handle: WatchHandle): Promise<void>;
}

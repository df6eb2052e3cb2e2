import type { PermissionFilter, Principal } from '../access/index.ts';

/**
 * One embedded chunk: what search filters on (acl, source, document, generation, time) and what it
 * returns (text, position). Document-level facts that can change without the chunk changing
 * (title, url) live in the registry only, so a rename never leaves a stale copy here.
 */
export interface ChunkPoint {
  /** A UUID (Qdrant only accepts UUIDs or integers as point ids). */
  id: string;
  vector: number[];
  documentId: string;
  sourceId: string;
  generation: number;
  chunkIndex: number;
  sectionPath: string[];
  text: string;
  /**
   * The chunk widened with neighbouring text of the same document (what an assistant reads);
   * absent on chunks indexed before it existed, where readers fall back to `text`.
   */
  context?: string;
  /** Epoch milliseconds of the document's last modification upstream. */
  lastModified: number;
  acl: Principal[];
}

/** What ranking a hit needs: enough to fuse channels, confirm it against the registry and fetch the rest. */
export type RankedPoint = Pick<ChunkPoint, 'id' | 'documentId' | 'sourceId' | 'generation' | 'lastModified' | 'acl'>;

export interface RankedHit {
  point: RankedPoint;
  /** Cosine similarity (vector search) or BM25 score (keyword search), higher is better. */
  score: number;
}

export interface VectorHit extends RankedHit {
  point: Omit<ChunkPoint, 'vector'>;
}

export interface VectorStore {
  readonly kind: string;
  /** Creates the collection/table and indexes if missing. Idempotent. */
  init(dimension: number): Promise<void>;
  upsert(points: ChunkPoint[]): Promise<void>;
  /**
   * Writes points whose ids the store does not hold (the caller knows). Only where that is cheaper
   * than `upsert` (LanceDB: an append instead of a merge on every id in the table).
   */
  insertNew?(points: ChunkPoint[]): Promise<void>;
  /** Deletes every chunk of the document, or only those whose generation differs from `keepGeneration`. */
  deleteDocument(documentId: string, opts?: { keepGeneration?: number }): Promise<void>;
  deleteSource(sourceId: string): Promise<void>;
  /** Replaces the ACL payload of all the document's chunks without touching vectors. */
  setDocumentAcl(documentId: string, acl: Principal[]): Promise<void>;
  /**
   * The `topK` nearest chunks that `filter` lets through. The filter is applied before ranking, so
   * with `topK` above the number of visible chunks every visible chunk comes back. Only a filter
   * built by `buildPermissionFilter` is accepted.
   */
  search(vector: number[], filter: PermissionFilter, topK: number): Promise<VectorHit[]>;
  /**
   * The keyword channel: the `topK` chunks that `filter` lets through ranked by BM25 over the terms
   * of `src/text/analyzer.ts` (heading path and text), written with the chunks by `upsert` and
   * removed with them. Same filter, same prefiltering and same fail-closed rules as `search`; only
   * chunks sharing at least one term with the query are returned.
   */
  keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<VectorHit[]>;
  /**
   * Optional, for a store where reading a hit's text costs more than ranking it (LanceDB reads
   * each candidate's text and passage from its row): the same two searches returning only the
   * ranking fields, same filter, same hits in the same order; and `complete`, which reads the
   * rest for the few hits that are shown. A hybrid search ranks a few hundred candidates and
   * shows ten.
   */
  ranking?: {
    search(vector: number[], filter: PermissionFilter, topK: number): Promise<RankedHit[]>;
    keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<RankedHit[]>;
    /** The full hits of hits this store ranked, in their order and with their scores; a hit whose chunk is gone since is left out. */
    complete(hits: RankedHit[]): Promise<VectorHit[]>;
  };
  /**
   * The chunks of one generation of a document, in chunk order (document fetch). No permission
   * filter here: the caller has already decided, from the registry, that the document is visible.
   */
  documentChunks(documentId: string, generation: number): Promise<Omit<ChunkPoint, 'vector'>[]>;
  /** Number of points, optionally for one source or document (for tests, stats and readiness). */
  count(filter?: { sourceId?: string; documentId?: string }): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

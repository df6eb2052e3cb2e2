import type { Principal } from '../types.ts';

/** One embedded chunk with everything search needs to filter and to answer without another lookup. */
export interface ChunkPoint {
  /** A UUID (Qdrant only accepts UUIDs or integers as point ids). */
  id: string;
  vector: number[];
  documentId: string;
  sourceId: string;
  sourceType: string;
  generation: number;
  chunkIndex: number;
  title: string;
  url: string | null;
  sectionPath: string[];
  text: string;
  /** Epoch milliseconds of the document's last modification upstream. */
  lastModified: number;
  acl: Principal[];
}

/**
 * The only filter a vector store understands. It is built by exactly one function,
 * `buildPermissionFilter` in src/retrieval/permissions.ts, for every search path.
 * Semantics every adapter must implement:
 *  - a point matches only if its `acl` shares at least one entry with `principals`;
 *    an empty `principals` list matches nothing (fail closed);
 *  - `sourceIds`, when present, restricts to those sources; an empty list matches nothing;
 *  - `modifiedAfter` (epoch ms), when present, keeps points with lastModified >= it.
 */
export interface VectorFilter {
  principals: Principal[];
  sourceIds?: string[];
  modifiedAfter?: number;
}

export interface VectorHit {
  point: Omit<ChunkPoint, 'vector'>;
  /** Cosine similarity, higher is better. */
  score: number;
}

export interface VectorStore {
  readonly kind: string;
  /** Creates the collection/table and indexes if missing. Idempotent. */
  init(dimension: number): Promise<void>;
  upsert(points: ChunkPoint[]): Promise<void>;
  /** Deletes every chunk of the document, or only those whose generation differs from `keepGeneration`. */
  deleteDocument(documentId: string, opts?: { keepGeneration?: number }): Promise<void>;
  deleteSource(sourceId: string): Promise<void>;
  /** Replaces the ACL payload of all the document's chunks without touching vectors. */
  setDocumentAcl(documentId: string, acl: Principal[]): Promise<void>;
  search(vector: number[], filter: VectorFilter, topK: number): Promise<VectorHit[]>;
  /** Number of points, optionally for one source (for tests, stats and readiness). */
  count(filter?: { sourceId?: string; documentId?: string }): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

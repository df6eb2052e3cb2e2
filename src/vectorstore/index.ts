import path from 'node:path';
import type { Config } from '../config.ts';
import type { VectorStore } from './interface.ts';
import { LanceDbVectorStore } from './lancedb.ts';
import { QdrantVectorStore } from './qdrant.ts';

export type { ChunkPoint, VectorHit, VectorStore } from './interface.ts';
export { LanceDbVectorStore } from './lancedb.ts';
export { QdrantVectorStore } from './qdrant.ts';
export { MemoryVectorStore } from './memory.ts';

const MB = 1024 * 1024;

/** Qdrant when QDRANT_URL is set, otherwise the embedded LanceDB table in the data dir. Call `init(dimension)` next. */
export function createVectorStore(config: Config): VectorStore {
  if (config.QDRANT_URL) {
    return new QdrantVectorStore({ url: config.QDRANT_URL, apiKey: config.QDRANT_API_KEY, collection: config.QDRANT_COLLECTION });
  }
  const purgeMs = config.PURGE_DELAY_SECONDS * 1000;
  return new LanceDbVectorStore({ dir: path.join(config.dataDir, 'lancedb'), purgeDelayMs: purgeMs, purgeGraceMs: purgeMs, ...lanceCacheSizes(config) });
}

/** The LanceDB cache bounds the configuration sets, in the store's units. */
export function lanceCacheSizes(config: Pick<Config, 'LANCEDB_INDEX_CACHE_MB' | 'LANCEDB_METADATA_CACHE_MB'>) {
  return { indexCacheBytes: config.LANCEDB_INDEX_CACHE_MB * MB, metadataCacheBytes: config.LANCEDB_METADATA_CACHE_MB * MB };
}

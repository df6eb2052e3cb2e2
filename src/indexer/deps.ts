import type pino from 'pino';
import type { Embedder } from '../embedder/interface.ts';
import type { MetadataStore } from '../metadata/interface.ts';
import type { VectorStore } from '../vectorstore/interface.ts';

/** What the indexer needs from the running service; the service's Services satisfies it. */
export interface IndexerContext {
  metadata: MetadataStore;
  vectors: VectorStore;
  embedder: Embedder;
  log: pino.Logger;
  config: { EMBEDDING_BATCH_SIZE: number; SEARCH_CONTEXT_CHARS?: number };
}

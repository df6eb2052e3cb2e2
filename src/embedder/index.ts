import path from 'node:path';
import type { Config } from '../config.ts';
import type { Embedder } from './interface.ts';

export type { Embedder } from './interface.ts';

/**
 * Builds the configured embedder. Providers are imported lazily: the local one loads ONNX Runtime,
 * which an OpenAI-backed deployment never needs.
 */
export async function createEmbedder(config: Config): Promise<Embedder> {
  if (config.EMBEDDING_PROVIDER === 'openai') {
    const { OpenAiEmbedder } = await import('./openai.ts');
    if (!config.OPENAI_API_KEY) throw new Error('OPENAI_API_KEY is required when EMBEDDING_PROVIDER=openai');
    return OpenAiEmbedder.create({
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      model: config.EMBEDDING_MODEL,
      batchSize: config.EMBEDDING_BATCH_SIZE,
    });
  }
  const { LocalEmbedder } = await import('./local.ts');
  return LocalEmbedder.create({
    modelPath: config.LOCAL_MODEL_PATH,
    model: config.EMBEDDING_MODEL,
    cacheDir: config.MODEL_CACHE_DIR ?? path.join(config.dataDir, 'models'),
    remoteHost: config.HF_ENDPOINT,
    batchSize: config.EMBEDDING_BATCH_SIZE,
  });
}

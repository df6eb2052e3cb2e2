import { loadConfig } from '../config.ts';
import { createEmbedder } from '../embedder/index.ts';

/**
 * `clearance model`: loads the configured embedding model once and exits. With the local provider
 * this downloads the model into MODEL_CACHE_DIR (from HF_ENDPOINT), or checks the folder at
 * LOCAL_MODEL_PATH, so that API and worker processes started afterwards find it in the cache and
 * never race each other to download it (docker-compose.yml runs it as an init service).
 */
export async function fetchModel(env = process.env) {
  const config = loadConfig(env);
  if (config.EMBEDDING_PROVIDER !== 'local') {
    console.log(`EMBEDDING_PROVIDER=${config.EMBEDDING_PROVIDER}: no local model to fetch`);
    return;
  }
  const started = Date.now();
  const embedder = await createEmbedder(config);
  try {
    // One real inference proves the weights load, not only that the files are there.
    const [vector] = await embedder.embed(['clearance model check']);
    console.log(`${embedder.modelId} ready: ${vector!.length} dimensions, ${embedder.maxTokens} tokens per input (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } finally {
    await embedder.close?.();
  }
}

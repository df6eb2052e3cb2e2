import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chunkDocument, embeddingText } from '../indexer/chunker.ts';
import { extractText } from '../extract/index.ts';
import { closeServices } from '../services.ts';
import { writeCorpus } from './corpus.ts';
import { addFolderSource, benchServices, timedSync } from './harness.ts';

/**
 * Filesystem ingest rate (extract → chunk → embed → write, end to end) against the embedding
 * model's own rate on the same chunk texts, on embedded stores in a temp dir.
 */
export async function benchIngest({ docs }: { docs: number }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-ingest-'));
  try {
    const corpus = path.join(tmp, 'corpus');
    const files = await writeCorpus(corpus, docs);
    const services = await benchServices(tmp);
    const config = services.config;
    const source = await addFolderSource(services, 'bench', corpus);
    const { stats, seconds: ingestSeconds } = await timedSync(services, source.id);

    // The same chunk texts straight through the model, no cache, same batch size.
    const texts: string[] = [];
    for (const file of files) {
      const extracted = await extractText({ bytes: await readFile(file), mimeType: 'text/markdown', fileName: file });
      const title = extracted.title?.trim() || path.basename(file, '.md');
      const pieces = await chunkDocument({ text: extracted.text, format: extracted.format, title },
        { maxTokens: services.embedder.maxTokens, countTokens: (t) => services.embedder.countTokens(t) });
      for (const c of pieces) texts.push(embeddingText(title, c));
    }
    const batch = config.EMBEDDING_BATCH_SIZE;
    const t1 = performance.now();
    for (let i = 0; i < texts.length; i += batch) await services.embedder.embed(texts.slice(i, i + batch));
    const modelSeconds = (performance.now() - t1) / 1000;

    const ingestRate = stats.chunksEmbedded / ingestSeconds;
    const modelRate = texts.length / modelSeconds;
    console.log(`model: ${services.embedder.modelId} (${services.embedder.dimension}-d, ${services.embedder.maxTokens} tokens), vectors: ${services.vectors.kind}, metadata: ${services.metadata.kind}`);
    console.log(`documents: ${stats.seen}   chunks embedded: ${stats.chunksEmbedded}`);
    console.log(`ingest (extract+chunk+embed+write): ${ingestSeconds.toFixed(1)} s  → ${ingestRate.toFixed(1)} chunks/s, ${(stats.seen / ingestSeconds).toFixed(1)} docs/s`);
    console.log(`model alone on the same ${texts.length} chunk texts: ${modelSeconds.toFixed(1)} s → ${modelRate.toFixed(1)} chunks/s`);
    console.log(`ingest runs at ${((ingestRate / modelRate) * 100).toFixed(0)}% of the model's own rate`);
    await closeServices(services);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { leadingHeading } from '../indexer/apply.ts';
import { sha256 } from '../indexer/hash.ts';
import { chunkDocument, embeddingText } from '../indexer/chunker.ts';
import { extractText } from '../extract/index.ts';
import type { Services } from '../context.ts';
import { closeServices } from '../services.ts';
import { collectGarbage, paragraph, percentile, writeCorpus } from './corpus.ts';
import { HashEmbedder } from './hash-embedder.ts';
import { createSyncWork } from '../jobs/policy.ts';
import { addFolderSource, benchServices, timedSync } from './harness.ts';

/**
 * Filesystem ingest rate (extract → chunk → embed → write, end to end) against the embedding
 * model's own rate on the same chunk texts, on embedded stores in a temp dir.
 *
 * The model's rate is its best on those texts: the distinct chunk texts ingest embeds, handed to
 * the embedder in one call (so it sorts all of them by length, which pads least), after a warm-up.
 * The machine is shared, so the model is timed once before and once after ingest and the mean is
 * the reference; ingest's time includes any background store work it set off. The token ids the
 * embedder keeps from counting (ingest's chunker measures each chunk, and its embedding reuses the
 * ids) are dropped before each model pass, so the reference includes the model's own tokenizing.
 * The model is timed warm, and so is ingest: syncs of other generated documents into other
 * sources run first, so that V8 has compiled the pipeline (and the registry's WebAssembly) before
 * the timed sync, as in a worker that has synced before. In a fresh process the first sync paid
 * that compilation on the CPU the model needs and ran ~5 points lower, and compiling goes on for a
 * few syncs (see WARM_UP_SYNCS).
 * Returns ingest's rate as a share of the model's.
 */
export async function benchIngest({ docs }: { docs: number }): Promise<number> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-ingest-'));
  try {
    const corpus = path.join(tmp, 'corpus');
    const files = await writeCorpus(corpus, docs);
    const services = await benchServices(tmp);
    const { embedder } = services;
    const texts = new Set<string>();
    for (const file of files) {
      const extracted = await extractText({ bytes: await readFile(file), mimeType: 'text/markdown', fileName: file });
      // As ingest titles a document (apply.ts), so the texts are the ones it embeds.
      const title = extracted.title?.trim() || leadingHeading(extracted.text) || path.basename(file, '.md');
      const pieces = await chunkDocument({ text: extracted.text, format: extracted.format, title },
        { maxTokens: embedder.maxTokens, countTokens: (t) => embedder.countTokens(t), passageChars: services.config.SEARCH_CONTEXT_CHARS });
      for (const c of pieces) texts.add(embeddingText(title, c));
    }
    const distinct = [...texts];
    const forgetEncodings = () => (embedder as Partial<{ forgetEncodings(): void }>).forgetEncodings?.();
    forgetEncodings();
    // Warm-up: ONNX Runtime's first runs allocate and plan; neither timed pass should pay for it.
    await embedder.embed(distinct.slice(0, services.config.EMBEDDING_BATCH_SIZE * 2));
    const cpu: Record<string, number> = {};
    const cpuSeconds = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
    const modelPass = async (label: string) => {
      forgetEncodings();
      const t = performance.now();
      const c = process.cpuUsage();
      await embedder.embed(distinct);
      cpu[label] = cpuSeconds(process.cpuUsage(c));
      return (performance.now() - t) / 1000;
    };
    const warmUp = await warmUpSyncs(services, tmp);
    const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const loadBefore = load();
    const before = await modelPass('before');

    const source = await addFolderSource(services, 'bench', corpus);
    const hashes = distinct.map(sha256);
    const cachedBefore = await services.metadata.embeddings.get(embedder.modelId, hashes);
    if (cachedBefore.size > 0) throw new Error(`${cachedBefore.size} of the timed texts were embedded before the timed sync (by the warm-up)`);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const { stats } = await timedSync(services, source.id);
    await settleVectorStore(services);
    const ingestSeconds = (performance.now() - t0) / 1000;
    cpu.ingest = cpuSeconds(process.cpuUsage(c0));
    // Checked through the embedding cache, which holds every text a sync embedded (by hash), none of
    // them before: wrapping embedder.embed instead changed the embedder's shape, and V8 threw away
    // the pipeline code the warm-up had optimised for it (countTokens, runTexts) in the timed sync.
    const cached = await services.metadata.embeddings.get(embedder.modelId, hashes);
    if (stats.chunksEmbedded !== distinct.length || cached.size !== distinct.length) {
      throw new Error(`ingest embedded ${stats.chunksEmbedded} texts (${cached.size} of the ${distinct.length} the model pass times): the comparison would not be on the same texts`);
    }

    const after = await modelPass('after');
    const modelSeconds = (before + after) / 2;
    const ingestRate = stats.chunksEmbedded / ingestSeconds;
    const modelRate = distinct.length / modelSeconds;
    console.log(`model: ${embedder.modelId} (${embedder.dimension}-d, ${embedder.maxTokens} tokens, batch ${services.config.EMBEDDING_BATCH_SIZE}), vectors: ${services.vectors.kind}, metadata: ${services.metadata.kind}`);
    console.log(`load average before: ${loadBefore}; after: ${load()} (${os.availableParallelism()} cores)`);
    console.log(`warm-up: ${WARM_UP_SYNCS} syncs of ${warmUp.documents} other documents in all, first (${warmUp.seconds.toFixed(1)} s)`);
    console.log(`documents: ${stats.seen}   chunks embedded: ${stats.chunksEmbedded} (the same ${distinct.length} distinct texts the model pass embeds)`);
    console.log(`ingest (extract+chunk+embed+write): ${ingestSeconds.toFixed(1)} s  → ${ingestRate.toFixed(1)} chunks/s, ${(stats.seen / ingestSeconds).toFixed(1)} docs/s`);
    console.log(`model alone on the same ${distinct.length} texts: ${before.toFixed(1)} s before ingest, ${after.toFixed(1)} s after → ${modelRate.toFixed(1)} chunks/s`);
    console.log(`CPU time (all threads): ingest ${cpu.ingest!.toFixed(1)} s, model alone ${cpu.before!.toFixed(1)} s before and ${cpu.after!.toFixed(1)} s after`);
    console.log(`ingest runs at ${((ingestRate / modelRate) * 100).toFixed(0)}% of the model's own rate`);
    await closeServices(services);
    return ingestRate / modelRate;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * `runs` measurements of benchIngest, each from scratch (new stores, the model loaded again), and
 * their median: the machine's speed drifts by 10-20 % between two model passes a minute apart, so
 * one measurement says little on its own.
 */
export async function benchIngestRuns({ docs, runs }: { docs: number; runs: number }) {
  const shares: number[] = [];
  for (let r = 1; r <= runs; r++) {
    if (runs > 1) console.log(`— run ${r} of ${runs}`);
    shares.push(await benchIngest({ docs }));
  }
  if (runs === 1) return;
  const median = percentile([...shares].sort((a, b) => a - b), 50);
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  console.log(`— median of ${runs} runs: ingest at ${pct(median)} of the model's own rate (runs: ${shares.map(pct).join(', ')})`);
}

/** Documents of each warm-up sync: a page and a half, so both ways a page is prepared run (see pipeline.ts). */
const WARM_UP_DOCS = 150;
/**
 * Warm-up syncs before the timed one. A worker process syncs for days; its first syncs pay V8's
 * optimising compiler (background threads, on the CPU the model needs), which settles after a few:
 * measured per thread, ~250 ms of compiling in a process's second sync, 30–45 ms by its sixth.
 */
const WARM_UP_SYNCS = 4;

/** Full syncs of generated documents that share no text with the timed corpus (other seeds), each into its own source. */
async function warmUpSyncs(services: Services, tmp: string): Promise<{ documents: number; seconds: number }> {
  let documents = 0;
  const t = performance.now();
  for (let i = 0; i < WARM_UP_SYNCS; i++) {
    const folder = path.join(tmp, `warm-up-${i}`);
    await writeCorpus(folder, WARM_UP_DOCS, 20, 7 + i);
    const source = await addFolderSource(services, `bench-warm-up-${i}`, folder);
    const { stats } = await timedSync(services, source.id);
    await settleVectorStore(services);
    documents += stats.seen;
  }
  return { documents, seconds: (performance.now() - t) / 1000 };
}

/** Background index and purge work a sync set off belongs to its cost. */
async function settleVectorStore(services: Services) {
  const v = services.vectors as Partial<{ indexingSettled(): Promise<void> }>;
  await v.indexingSettled?.();
}

/** One short generated document (a title and a paragraph: one chunk), for the 100k-document memory run. */
function smallDoc(r: () => number, i: number): string {
  return `# Note ${i}\n\n${paragraph(r, 30 + Math.floor(r() * 30))}\n`;
}

/**
 * Memory while ingesting a large source: RSS sampled after every committed page of one full sync
 * of `docs` small generated documents. With `embedder: 'hash'` a hashed bag of words replaces the
 * model (the real one would take hours for 100k documents on two cores), so the figure covers the
 * pipeline, registry and vector store, not the model's own memory (which is fixed once loaded).
 */
export async function benchIngestMemory({ docs, embedder }: { docs: number; embedder: 'model' | 'hash' }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-ingest-rss-'));
  try {
    const corpus = path.join(tmp, 'corpus');
    const tWrite = performance.now();
    await writeCorpus(corpus, docs, 50, 42, smallDoc);
    console.log(`generated ${docs} documents in ${((performance.now() - tWrite) / 1000).toFixed(0)} s`);
    const services = await benchServices(tmp, {}, embedder === 'hash' ? { embedder: new HashEmbedder() } : {});
    const source = await addFolderSource(services, 'bench-rss', corpus);
    const data = path.join(tmp, 'data');
    const cache = () => (services.vectors as Partial<{ cacheBytes(): number }>).cacheBytes?.() ?? 0;
    // PGlite's WebAssembly memory (inside RSS, outside the JS heap); it grows and never shrinks.
    const wasm = () => ((services.metadata as unknown as { driver?: { db?: { mod?: { HEAPU8?: Uint8Array } } } }).driver?.db?.mod?.HEAPU8?.byteLength ?? 0);
    // Generating the corpus leaves garbage (its buffers: ~600 MB of external memory on a 100k run)
    // that V8 frees at a time of its choosing; collected now, the first samples measure the sync.
    collectGarbage();
    const start = process.memoryUsage().rss;
    const samples: Sample[] = [];
    const { run } = await services.metadata.runs.start(source.id, 'full');
    const t0 = performance.now();
    let nextReport = 0;
    const outcome = await createSyncWork(services)({ sourceId: source.id, runId: run.id, mode: null, attempt: 0, throttled: 0 }, {
      signal: new AbortController().signal,
      onProgress: (p) => {
        const m = process.memoryUsage();
        samples.push({ seen: p.stats.seen, seconds: (performance.now() - t0) / 1000, rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, cache: cache(), wasm: wasm() });
        // About every 10 %: what is on disk too (a walk of the data directory, so not every page).
        if (p.stats.seen >= nextReport) {
          nextReport += docs / 10;
          const last = samples.at(-1)!;
          void disk(data).then((d) => console.log(`${row(last)}  ${d}`));
        }
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const done = await services.metadata.runs.get(run.id);
    if (outcome.kind !== 'done' || done?.status !== 'succeeded') throw new Error(`benchmark sync did not succeed: ${done?.error ?? outcome.kind}`);
    const end = samples.at(-1)!;
    console.log(`${row(end)}  ${await disk(data)} (sync done)`);
    const at = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * fraction))]!;
    const peak = Math.max(...samples.map((s) => s.rss));
    console.log(`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '(unset: glibc default, 8 per core)'}; the Docker image sets 2 (native threads' freed memory fragments across arenas)`);
    console.log(`embedder: ${services.embedder.modelId}${embedder === 'hash' ? ' (hashed bag of words standing in for the model)' : ''}, vectors: ${services.vectors.kind}, metadata: ${services.metadata.kind}`);
    console.log(`documents: ${done.stats.seen}   chunks embedded: ${done.stats.chunksEmbedded}   ${seconds.toFixed(0)} s → ${(done.stats.seen / seconds).toFixed(0)} docs/s`);
    console.log(`RSS: before the sync ${mb(start)} MB; at 10 % ${mb(at(0.1).rss)} MB, 50 % ${mb(at(0.5).rss)} MB, 90 % ${mb(at(0.9).rss)} MB, end ${mb(end.rss)} MB; peak ${mb(peak)} MB`);
    console.log(`RSS growth from 10 % to the end: ${mb(end.rss - at(0.1).rss)} MB over ${end.seen - at(0.1).seen} documents ` +
      `(JS heap ${signedMb(end.heap - at(0.1).heap)}, of ${signedMb(end.heapTotal - at(0.1).heapTotal)} reserved, external ${signedMb(end.external - at(0.1).external)}, PGlite memory ${signedMb(end.wasm - at(0.1).wasm)}, LanceDB caches ${signedMb(end.cache - at(0.1).cache)} MB)`);
    await closeServices(services);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

interface Sample { seen: number; seconds: number; rss: number; heap: number; heapTotal: number; external: number; arrayBuffers: number; cache: number; wasm: number }

const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
const signedMb = (b: number) => `${b >= 0 ? '+' : ''}${mb(b)}`;
const row = (s: Sample) => `${String(s.seen).padStart(7)} docs ${s.seconds.toFixed(0).padStart(5)} s  RSS ${mb(s.rss)} MB (JS heap ${mb(s.heap)} of ${mb(s.heapTotal)}, external ${mb(s.external)}, array buffers ${mb(s.arrayBuffers)}, PGlite memory ${mb(s.wasm)}, LanceDB caches ${mb(s.cache)})`;

async function disk(data: string): Promise<string> {
  const [lance, all] = await Promise.all([dirBytes(path.join(data, 'lancedb')), dirBytes(data)]);
  return `data dir ${mb(all)} MB (LanceDB ${mb(lance)})`;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) total += await stat(path.join(e.parentPath, e.name)).then((s) => s.size, () => 0);
  }
  return total;
}

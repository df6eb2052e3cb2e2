import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildPermissionFilter, type PermissionFilter } from '../access/index.ts';
import { loadConfig } from '../config.ts';
import { createEmbedder } from '../embedder/index.ts';
import { LanceDbVectorStore } from '../vectorstore/lancedb.ts';
import type { IndexWorkReport, LanceIndexSettings } from '../vectorstore/lancedb-index.ts';
import { createVectorStore, lanceCacheSizes } from '../vectorstore/index.ts';
import type { ChunkPoint, VectorStore } from '../vectorstore/interface.ts';
import { benchModelEnv, percentile, rng } from './corpus.ts';
import { randomUnitVector } from './seed.ts';

const MB = 1024 * 1024;

/**
 * `uniform`: independent directions uniform on the sphere. In 512 dimensions every point is then
 * almost equally far from every other (the nearest of a million is barely nearer than a random
 * one), which no embedding model produces and on which every approximate index degenerates to a
 * scan. `clustered` (default): directions around topic centres (about 500 chunks per topic, cosine
 * ≈ 0.7 to their centre, ≈ 0.5 between chunks of a topic, ≈ 0 across topics), the structure that
 * makes approximate search work on real embeddings. Queries come from the same distribution.
 */
export type SyntheticDistribution = 'clustered' | 'uniform';

export function syntheticVectors(seed: number, dimension: number, distribution: SyntheticDistribution, chunks: number): () => Float32Array {
  const r = rng(seed);
  const unit = () => Float32Array.from(randomUnitVector(r, dimension));
  if (distribution === 'uniform') return unit;
  const centres = Array.from({ length: Math.max(16, Math.round(chunks / 500)) }, unit);
  const pick = rng(seed + 1);
  return () => {
    const c = centres[Math.floor(pick() * centres.length)]!;
    const noise = randomUnitVector(r, dimension);
    const v = new Float32Array(dimension);
    let norm = 0;
    for (let i = 0; i < dimension; i++) {
      v[i] = c[i]! + noise[i]!;
      norm += v[i]! * v[i]!;
    }
    norm = Math.sqrt(norm);
    for (let i = 0; i < dimension; i++) v[i] = v[i]! / norm;
    return v;
  };
}

const GROUPS = 100;
const ALL = 'group:all-staff';
/** Chunk i belongs to document ⌊i/4⌋, readable by everyone on all-staff and by group g(doc mod 100). */
const groupOf = (i: number) => Math.floor(i / 4) % GROUPS;

interface Fraction { label: string; groups: (q: number) => number[] }
const FRACTIONS: Fraction[] = [
  { label: '100%', groups: () => [] },
  { label: '10%', groups: (q) => Array.from({ length: 10 }, (_, k) => (q * 7 + k * 10) % GROUPS) },
  { label: '1%', groups: (q) => [(q * 13) % GROUPS] },
];
const filterFor = (f: Fraction, q: number): PermissionFilter =>
  buildPermissionFilter({ principals: f.label === '100%' ? [ALL] : f.groups(q).map((g) => `group:g${g}`) });

/** Exact top-k by brute force over the seeded vectors (they are unit length: cosine = dot product). */
function exactTopK(vectors: Float32Array, dimension: number, q: Float32Array, visible: (i: number) => boolean, k: number): number[] {
  const n = vectors.length / dimension;
  const best: { i: number; s: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (!visible(i)) continue;
    let s = 0;
    const o = i * dimension;
    for (let d = 0; d < dimension; d++) s += vectors[o + d]! * q[d]!;
    if (best.length < k || s > best[best.length - 1]!.s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

const layoutLine = (layout: IndexWorkReport['layout']) => {
  if (!layout) return '';
  if ('error' in layout) return `ACL order failed: ${layout.error}; `;
  return layout.skipped ? `rows already in ACL order (${layout.seconds.toFixed(1)} s to check); ` : `${layout.rowsRewritten} rows rewritten in ACL order in ${layout.seconds.toFixed(1)} s (${layout.runsBefore} runs of ${layout.acls} ACLs before); `;
};

/**
 * `npx clearance bench search --synthetic --chunks N`: N chunks with synthetic unit vectors of the
 * model's dimension written straight into the vector store (the embedded LanceDB table unless
 * QDRANT_URL is set), its indexes built as the store builds them in production, then, for callers
 * who may see 100 %, 10 % and 1 % of the chunks: latency of the store's filtered search and
 * recall@10 against the exact top 10 of what each caller may see.
 */
export async function benchSearchSynthetic(opts: {
  chunks: number; queries: number; distribution: SyntheticDistribution;
  /** Keep the seeded store here and reuse it on the next run with the same chunks and distribution. */
  dir?: string;
  /** Overrides of the embedded store's search settings, for tuning. */
  index?: Partial<LanceIndexSettings>;
}) {
  const tmp = opts.dir ? path.resolve(opts.dir) : await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-synthetic-'));
  let store: VectorStore | undefined;
  try {
    const config = loadConfig({ ...process.env, ...benchModelEnv(), CLEARANCE_DATA_DIR: path.join(tmp, 'data'), LOG_LEVEL: 'warn', QDRANT_COLLECTION: `bench_${Date.now()}` });
    const embedder = await createEmbedder(config);
    const dimension = embedder.dimension;
    await embedder.close?.();
    const lance = !config.QDRANT_URL;
    // Embedded: index building is timed on its own after seeding rather than left to run in the background meanwhile.
    const tableName = `synthetic_${opts.distribution}_${opts.chunks}`;
    store = lance
      ? new LanceDbVectorStore({
        dir: path.join(config.dataDir, 'lancedb'), table: tableName, indexCheckIntervalMs: Number.POSITIVE_INFINITY, index: opts.index, ...lanceCacheSizes(config),
      })
      : createVectorStore(config);
    await store.init(dimension);
    const reuse = !!opts.dir && (await store.count()) === opts.chunks;

    const next = syntheticVectors(7, dimension, opts.distribution, opts.chunks);
    const vectors = new Float32Array(opts.chunks * dimension);
    const t0 = performance.now();
    const BATCH = 10_000;
    for (let start = 0; start < opts.chunks; start += BATCH) {
      const points: ChunkPoint[] = [];
      for (let i = start; i < Math.min(opts.chunks, start + BATCH); i++) {
        const v = next();
        vectors.set(v, i * dimension);
        if (reuse) continue;
        points.push({
          id: randomUUID(), vector: Array.from(v), documentId: `doc-${Math.floor(i / 4)}`, sourceId: 'synthetic', generation: 1,
          chunkIndex: i % 4, sectionPath: [], text: `chunk ${i}`, lastModified: 1_700_000_000_000, acl: [ALL, `group:g${groupOf(i)}`],
        });
      }
      await (store instanceof LanceDbVectorStore ? store.insertNew(points) : store.upsert(points));
      if ((start / BATCH) % 10 === 9) process.stdout.write(` ${start + BATCH}`);
    }
    const seedSeconds = (performance.now() - t0) / 1000;
    process.stdout.write(`\n${reuse ? 'reused' : 'seeded'} ${opts.chunks} chunks in ${seedSeconds.toFixed(0)} s\n`);
    let buildLine = 'index: Qdrant builds its HNSW graph and quantized copy itself (not timed here)';
    if (store instanceof LanceDbVectorStore) {
      const t1 = performance.now();
      const { built, optimizeSeconds } = await store.buildIndexes();
      const status = await store.indexStatus();
      buildLine = `index build: ${((performance.now() - t1) / 1000).toFixed(1)} s (${(built?.actions ?? []).map((a) => (a.type === 'scalar' ? a.column : `vector ${a.kind}`)).join(', ') || 'nothing due'}` +
        `; ${layoutLine(built?.layout)}${built?.seconds.toFixed(1) ?? 0} s building, ${optimizeSeconds.toFixed(1)} s optimize) → vector index ${status.vector.map((v) => v.name).join(', ') || 'none'}, ` +
        `scalar indexes ${[...status.scalar].sort().join(', ') || 'none'}, ${status.unindexedRows} rows unindexed`;
    }
    console.log(buildLine);

    const queries = Array.from({ length: opts.queries }, next);
    // A serving process has its index in memory after its first minutes; a search of the 1 % caller (exact:
    // every partition, or the whole table) reads all of it once, so the figures below are that steady state.
    const tw = performance.now();
    await store.search(Array.from(queries[0]!), filterFor(FRACTIONS[2]!, 0), 10);
    console.log(`warm-up: one exact search read the whole index into memory in ${(performance.now() - tw).toFixed(0)} ms (a cold process pays this on its first searches)`);
    console.log(`vector store: ${store.kind}   chunks: ${opts.chunks}   dimension: ${dimension}   distribution: ${opts.distribution}   queries per fraction: ${opts.queries}   topK: 10`);
    console.log(['visible'.padEnd(8), 'rows'.padStart(9), 'p50 ms'.padStart(8), 'p95 ms'.padStart(8), 'p99 ms'.padStart(8), 'recall@10'.padStart(10)].join('  '));
    // Recall is measured on chunk positions; the store returns chunks, whose text names the position.
    const indexOf = (text: string) => Number(text.slice('chunk '.length));
    for (const f of FRACTIONS) {
      const ms: number[] = [];
      let hits = 0;
      let wanted = 0;
      let rows = 0;
      // Warm-up: first touches of index files and the plan's visible-row counts are not what a busy service sees.
      for (let q = 0; q < Math.min(10, queries.length); q++) await store.search(Array.from(queries[q]!), filterFor(f, q), 10);
      for (let q = 0; q < queries.length; q++) {
        const query = Array.from(queries[q]!);
        const filter = filterFor(f, q);
        const t = performance.now();
        const got = await store.search(query, filter, 10);
        ms.push(performance.now() - t);
        const groups = new Set(f.groups(q));
        const visible = f.label === '100%' ? () => true : (i: number) => groups.has(groupOf(i));
        if (q === 0) for (let i = 0; i < opts.chunks; i++) if (visible(i)) rows++;
        const exact = new Set(exactTopK(vectors, dimension, queries[q]!, visible, 10));
        wanted += exact.size;
        for (const h of got) if (exact.has(indexOf(h.point.text))) hits++;
      }
      ms.sort((a, b) => a - b);
      console.log([f.label.padEnd(8), String(rows).padStart(9), percentile(ms, 50).toFixed(1).padStart(8), percentile(ms, 95).toFixed(1).padStart(8),
        percentile(ms, 99).toFixed(1).padStart(8), (hits / wanted).toFixed(3).padStart(10)].join('  '));
    }
    if (store instanceof LanceDbVectorStore) {
      console.log(`LanceDB caches hold ${(store.cacheBytes() / MB).toFixed(0)} MB (LANCEDB_INDEX_CACHE_MB=${config.LANCEDB_INDEX_CACHE_MB}, LANCEDB_METADATA_CACHE_MB=${config.LANCEDB_METADATA_CACHE_MB}); RSS ${(process.memoryUsage().rss / MB).toFixed(0)} MB`);
    }
    console.log(`load average: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores`);
  } finally {
    await store?.close();
    if (!opts.dir) await rm(tmp, { recursive: true, force: true });
  }
}

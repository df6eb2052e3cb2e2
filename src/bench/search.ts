import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chunkIdFor, documentIdFor } from '../indexer/hash.ts';
import { buildPermissionFilter } from '../access/index.ts';
import { fuse, SEARCH_MODES } from '../retrieval/fusion.ts';
import { search } from '../retrieval/search.ts';
import type { Services } from '../context.ts';
import { closeServices } from '../services.ts';
import type { ChunkPoint } from '../vectorstore/interface.ts';
import { paragraph, percentile, rng } from './corpus.ts';
import { randomUnitVector } from './seed.ts';
import { addFolderSource, benchServices } from './harness.ts';

const GROUPS = 50;
/** On every chunk, so a caller holding it passes the ACL filter everywhere: the unfiltered baseline. */
const ALL = 'group:all-staff';
const USERS = 500;

/**
 * Search latency over N chunks in the configured vector store (LanceDB embedded by default,
 * Qdrant when QDRANT_URL is set). Each chunk is readable by one of 50 groups and a few users,
 * and every chunk also carries `group:all-staff`, so the "unfiltered" baseline runs the same code
 * path with a filter that excludes nothing.
 */
export async function benchSearch({ chunks, queries, synthetic = false }: { chunks: number; queries: number; synthetic?: boolean }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-search-'));
  try {
    const s = await benchServices(tmp, { QDRANT_COLLECTION: `bench_${Date.now()}` });
    const r = rng(7);
    const { embedSeconds } = await seedSearchIndex(s, tmp, r, chunks, synthetic);
    const queryTexts = Array.from({ length: queries }, () => paragraph(r, 8));
    const queryVectors = await s.embedder.embed(queryTexts);
    const unfiltered = buildPermissionFilter({ principals: [ALL] });
    const time = async (filterFor: (i: number) => ReturnType<typeof buildPermissionFilter>) => {
      const ms: number[] = [];
      let returned = 0;
      for (let i = 0; i < queries; i++) {
        const t = performance.now();
        returned += (await s.vectors.search(queryVectors[i]!, filterFor(i), 10)).length;
        ms.push(performance.now() - t);
      }
      return { ms: ms.sort((a, b) => a - b), returned };
    };
    await time(() => unfiltered); // warm-up
    const base = await time(() => unfiltered);
    const acl = await time((i) => buildPermissionFilter({ principals: [`user:u${i % USERS}@acme.test`, `group:g${i % GROUPS}`, `group:g${(i + 7) % GROUPS}`] }));
    // End to end as the API runs it: query embedding, filtered vector search, registry re-check, audit.
    const e2e = async (groups: (i: number) => string[]) => {
      const ms: number[] = [];
      for (let i = 0; i < queries; i++) {
        const ctx = { ...s, caller: { kind: 'user' as const, email: `u${i % USERS}@acme.test`, groups: groups(i), isAdmin: false, isCompliance: false }, requestId: 'bench' };
        const t = performance.now();
        await search({ ctx, input: { query: queryTexts[i]!, topK: 10 } });
        ms.push(performance.now() - t);
      }
      return ms.sort((a, b) => a - b);
    };
    const e2eAll = await e2e(() => ['all-staff']);
    const e2eAcl = await e2e((i) => [`g${i % GROUPS}`, `g${(i + 7) % GROUPS}`]);
    // Per search mode, store level, with the ACL filter: the dense search, the BM25 search, and both
    // (run together, as the service does) plus fusion. Hybrid asks each channel for 100 candidates.
    const aclFilter = (i: number) => buildPermissionFilter({ principals: [`user:u${i % USERS}@acme.test`, `group:g${i % GROUPS}`, `group:g${(i + 7) % GROUPS}`] });
    const perMode: Record<string, number[]> = {};
    for (const mode of SEARCH_MODES) {
      const ms: number[] = [];
      for (let i = 0; i < queries; i++) {
        const f = aclFilter(i);
        const t = performance.now();
        if (mode === 'vector') await s.vectors.search(queryVectors[i]!, f, 10);
        else if (mode === 'keyword') await s.vectors.keywordSearch(queryTexts[i]!, f, 10);
        else {
          const [d, k] = await Promise.all([s.vectors.search(queryVectors[i]!, f, 100), s.vectors.keywordSearch(queryTexts[i]!, f, 100)]);
          fuse(d, k).slice(0, 10);
        }
        ms.push(performance.now() - t);
      }
      perMode[mode] = ms.sort((a, b) => a - b);
    }
    const e2eModes: Record<string, number[]> = {};
    for (const mode of SEARCH_MODES) {
      const ms: number[] = [];
      for (let i = 0; i < queries; i++) {
        const ctx = { ...s, caller: { kind: 'user' as const, email: `u${i % USERS}@acme.test`, groups: [`g${i % GROUPS}`, `g${(i + 7) % GROUPS}`], isAdmin: false, isCompliance: false }, requestId: 'bench' };
        const t = performance.now();
        await search({ ctx, input: { query: queryTexts[i]!, topK: 10, mode } });
        ms.push(performance.now() - t);
      }
      e2eModes[mode] = ms.sort((a, b) => a - b);
    }
    const tq = performance.now();
    await s.embedder.embed(queryTexts.slice(0, 50));
    const queryEmbedMs = (performance.now() - tq) / Math.min(50, queryTexts.length);

    console.log(`vector store: ${s.vectors.kind}   chunks: ${chunks}   queries: ${queries}   topK: 10   model: ${s.embedder.modelId}`);
    console.log(`(indexing the ${chunks} chunks took ${embedSeconds.toFixed(1)} s of embedding)`);
    console.log(`without ACL filter:  p50 ${percentile(base.ms, 50).toFixed(2)} ms   p95 ${percentile(base.ms, 95).toFixed(2)} ms   (avg ${(base.returned / queries).toFixed(1)} results)`);
    console.log(`with ACL filter:     p50 ${percentile(acl.ms, 50).toFixed(2)} ms   p95 ${percentile(acl.ms, 95).toFixed(2)} ms   (avg ${(acl.returned / queries).toFixed(1)} results; caller sees ~${(100 * (2 / GROUPS + 2 / USERS)).toFixed(0)}% of chunks)`);
    console.log(`end to end (search service: embed query, filtered search, registry re-check, audit write):`);
    console.log(`  caller sees everything:  p50 ${percentile(e2eAll, 50).toFixed(2)} ms   p95 ${percentile(e2eAll, 95).toFixed(2)} ms`);
    console.log(`  caller sees ~4%:         p50 ${percentile(e2eAcl, 50).toFixed(2)} ms   p95 ${percentile(e2eAcl, 95).toFixed(2)} ms`);
    console.log(`query embedding adds ~${queryEmbedMs.toFixed(1)} ms per query on this machine`);
    console.log(`per search mode, with ACL filter (caller sees ~4%), topK 10:`);
    for (const mode of SEARCH_MODES) {
      console.log(`  ${mode.padEnd(8)} store: p50 ${percentile(perMode[mode]!, 50).toFixed(2)} ms   p95 ${percentile(perMode[mode]!, 95).toFixed(2)} ms` +
        `   end to end: p50 ${percentile(e2eModes[mode]!, 50).toFixed(2)} ms   p95 ${percentile(e2eModes[mode]!, 95).toFixed(2)} ms`);
    }
    console.log(`hybrid p95 / vector p95: store ${(percentile(perMode.hybrid!, 95) / percentile(perMode.vector!, 95)).toFixed(2)}×, ` +
      `end to end ${(percentile(e2eModes.hybrid!, 95) / percentile(e2eModes.vector!, 95)).toFixed(2)}×${synthetic ? '   (index vectors synthetic)' : ''}`);
    await closeServices(s);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Seeds `chunks` chunks (four per document, each document readable by all-staff, one of 50
 * groups and two of 500 users) into the store and the registry, as `bench search` measures them.
 */
export async function seedSearchIndex(s: Services, tmp: string, r: () => number, chunks: number, synthetic = false): Promise<{ embedSeconds: number }> {
  const texts = Array.from({ length: chunks }, () => paragraph(r, 40));
  const t0 = performance.now();
  const vectors: number[][] = [];
  // --synthetic: random unit vectors for the index (exact search costs the same for any vector), real query embeddings.
  if (synthetic) for (let i = 0; i < texts.length; i++) vectors.push(randomUnitVector(r, s.embedder.dimension));
  else for (let i = 0; i < texts.length; i += 64) vectors.push(...(await s.embedder.embed(texts.slice(i, i + 64))));
  const embedSeconds = (performance.now() - t0) / 1000;
  // Four chunks per document; the registry rows make the end-to-end path (registry re-check) real.
  const source = await addFolderSource(s, 'bench', tmp, { maxAgeDays: 365 });
  const { run } = await s.metadata.runs.start(source.id, 'full');
  const docAcl = new Map<string, string[]>();
  const points: ChunkPoint[] = texts.map((text, i) => {
    const externalId = `doc-${Math.floor(i / 4)}`;
    const documentId = documentIdFor(source.id, externalId);
    if (!docAcl.has(externalId)) {
      docAcl.set(externalId, [...new Set([ALL, `group:g${Math.floor(r() * GROUPS)}`, `user:u${Math.floor(r() * USERS)}@acme.test`, `user:u${Math.floor(r() * USERS)}@acme.test`])].sort());
    }
    return { id: chunkIdFor(documentId, 1, i % 4), vector: vectors[i]!, documentId, sourceId: source.id, generation: 1,
      chunkIndex: i % 4, sectionPath: [], text, lastModified: Date.now(), acl: docAcl.get(externalId)! };
  });
  for (let i = 0; i < points.length; i += 1000) await s.vectors.upsert(points.slice(i, i + 1000));
  for (const [externalId, acl] of docAcl) {
    await s.metadata.documents.upsert({ id: documentIdFor(source.id, externalId), sourceId: source.id, externalId, title: externalId, url: null, path: `/${externalId}`,
      mimeType: 'text/plain', owner: null, labels: [], lastModified: new Date(), contentVersion: '1', contentHash: 'x', aclHash: acl.join(','), acl,
      generation: 1, chunkCount: 4, status: 'indexed', error: null }, run.id);
  }
  return { embedSeconds };
}

/**
 * The LanceDB store at scale: the approximate vector index and scalar indexes are built in the
 * background as the table grows, rows written meanwhile are neither lost nor hidden, and the
 * permission filter is exactly as strict through the index as without it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { matches } from '../src/access/index.ts';
import { rng } from '../src/bench/corpus.ts';
import { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';
import {
  DEFAULT_LANCE_INDEX_SETTINGS, parseVectorIndexName, partitionsFor, planIndexWork, vectorIndexName, type IndexState, type LanceIndexSettings,
} from '../src/vectorstore/lancedb-index.ts';
import { MemoryVectorStore } from '../src/vectorstore/memory.ts';
import { POSTFILTER_MIN_SHARE, VisibleRowsCache, choosePlan, planLanceSearch } from '../src/vectorstore/plan.ts';
import type { ChunkPoint, VectorStore } from '../src/vectorstore/interface.ts';
import { lanceStores } from './support/lancedb-stores.ts';
import { DIM, filter, point, runVectorStoreConformance, type FilterSpec } from './support/vectorstore-conformance.ts';

const tempDir = () => fs.mkdtemp(path.join(os.tmpdir(), 'clearance-lancedb-index-'));

const randomVector = (r: () => number) => Array.from({ length: DIM }, () => r() - 0.5);

/**
 * A LanceDB store that brings its indexes fully up to date after every write and always takes the
 * approximate plan, probing every partition: results must then be exactly the brute-force ones,
 * so the whole conformance contract holds through the vector and scalar indexes.
 */
class EagerlyIndexed implements VectorStore {
  readonly kind = 'lancedb';
  constructor(readonly inner: LanceDbVectorStore) {}
  init(d: number) { return this.inner.init(d); }
  private async after<T>(p: Promise<T>): Promise<T> {
    const r = await p;
    await this.inner.buildIndexes();
    return r;
  }
  upsert(points: ChunkPoint[]) { return this.after(this.inner.upsert(points)); }
  deleteDocument(id: string, o?: { keepGeneration?: number }) { return this.after(this.inner.deleteDocument(id, o)); }
  deleteSource(id: string) { return this.after(this.inner.deleteSource(id)); }
  setDocumentAcl(id: string, acl: string[]) { return this.after(this.inner.setDocumentAcl(id, acl)); }
  search(...a: Parameters<VectorStore['search']>) { return this.inner.search(...a); }
  keywordSearch(...a: Parameters<VectorStore['keywordSearch']>) { return this.inner.keywordSearch(...a); }
  count(f?: { sourceId?: string; documentId?: string }) { return this.inner.count(f); }
  documentChunks(id: string, generation: number) { return this.inner.documentChunks(id, generation); }
  ping() { return this.inner.ping(); }
  close() { return this.inner.close(); }
}

const indexedEverywhere: Partial<LanceIndexSettings> = {
  vectorIndexFromRows: 4, scalarIndexFromRows: 1, exactMaxRows: -1, nprobes: 4096, retrainGrowth: 1.5,
};

runVectorStoreConformance('lancedb through the ANN and scalar indexes', async () => {
  const dir = await tempDir();
  const store = new EagerlyIndexed(new LanceDbVectorStore({ dir, optimizeEvery: 1_000_000, indexCheckIntervalMs: 1e9, index: indexedEverywhere }));
  return { store, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

describe('index policy', () => {
  const s: LanceIndexSettings = { ...DEFAULT_LANCE_INDEX_SETTINGS, vectorIndexFromRows: 1000, scalarIndexFromRows: 100, retrainGrowth: 2 };
  const state = (over: Partial<IndexState>): IndexState => ({ rows: 0, scalar: new Set(), vector: [], unindexedRows: 0, ...over });
  const vec = (trainedRows: number, kind = s.kind) => ({ name: vectorIndexName(kind, trainedRows), kind, trainedRows });

  it('builds nothing on a small table, scalar indexes first, the vector index past its threshold', () => {
    expect(planIndexWork(state({ rows: 99 }), s)).toEqual([]);
    expect(planIndexWork(state({ rows: 100 }), s)).toEqual([
      { type: 'scalar', column: 'acl' }, { type: 'scalar', column: 'sourceId' }, { type: 'scalar', column: 'documentId' },
    ]);
    expect(planIndexWork(state({ rows: 999, scalar: new Set(['acl', 'sourceId', 'documentId']) }), s)).toEqual([]);
    expect(planIndexWork(state({ rows: 1000, scalar: new Set(['acl', 'sourceId']) }), s)).toEqual([
      { type: 'scalar', column: 'documentId' }, { type: 'vector', kind: s.kind, trainRows: 1000, build: true, drop: [] },
    ]);
  });

  it('retrains once the table has grown by the configured factor, or the configured kind changed', () => {
    const all = new Set(['acl', 'sourceId', 'documentId']);
    expect(planIndexWork(state({ rows: 1999, scalar: all, vector: [vec(1000)] }), s)).toEqual([]);
    expect(planIndexWork(state({ rows: 2000, scalar: all, vector: [vec(1000)] }), s)).toEqual([
      { type: 'vector', kind: s.kind, trainRows: 2000, build: true, drop: [vectorIndexName(s.kind, 1000)] },
    ]);
    expect(planIndexWork(state({ rows: 1200, scalar: all, vector: [vec(1000, 'ivf_pq')] }), s)).toEqual([
      { type: 'vector', kind: s.kind, trainRows: 1200, build: true, drop: [vectorIndexName('ivf_pq', 1000)] },
    ]);
    // A retrain that stopped between committing the new index and dropping the old one.
    expect(planIndexWork(state({ rows: 1500, scalar: all, vector: [vec(600), vec(1200)] }), s)).toEqual([
      { type: 'vector', kind: s.kind, trainRows: 1200, build: false, drop: [vectorIndexName(s.kind, 600)] },
    ]);
  });

  it('reads the training size back from the index name, and nothing from foreign names', () => {
    expect(parseVectorIndexName(vectorIndexName('ivf_hnsw_sq', 123_456))).toEqual({ kind: 'ivf_hnsw_sq', trainedRows: 123_456 });
    expect(parseVectorIndexName(vectorIndexName('ivf_flat', 7))).toEqual({ kind: 'ivf_flat', trainedRows: 7 });
    for (const name of ['vector_idx', 'acl_idx', 'vector_ann_ivf_flat_', 'vector_ann_bogus_10', 'vector_ann_ivf_pq_1.5']) expect(parseVectorIndexName(name)).toBeUndefined();
    expect([partitionsFor(0), partitionsFor(100), partitionsFor(1_000_000), partitionsFor(1e9)]).toEqual([2, 10, 1000, 4096]);
  });

  it('plans exact search for filters that let few rows through', () => {
    expect(choosePlan(0, 100)).toBe('exact');
    expect(choosePlan(100, 100)).toBe('exact');
    expect(choosePlan(101, 100)).toBe('ann');
  });

  it('plans each search from the table size, the visible share and the vector index', () => {
    const base = { limit: 10, exactMaxRows: 1000, nprobes: 20 };
    const flat = { kind: 'ivf_flat', partitions: 300 };
    // Broad filters rank first and drop the invisible after, over-fetching for them.
    expect(planLanceSearch({ ...base, totalRows: 500, visibleRows: 500, index: null })).toEqual({ index: 'flat', nprobes: 20, postfilter: true, limit: 25, exact: true });
    expect(planLanceSearch({ ...base, totalRows: 100_000, visibleRows: 50_000, index: flat })).toEqual({ index: 'ivf', nprobes: 20, postfilter: true, limit: 40, exact: false });
    expect(planLanceSearch({ ...base, totalRows: 20, visibleRows: 20, index: null }).limit).toBe(20);
    expect(planLanceSearch({ ...base, totalRows: 1000, visibleRows: 1000 * POSTFILTER_MIN_SHARE - 1, index: null }).postfilter).toBe(false);
    // Selective filters: exact, through every IVF_FLAT partition when there is such an index.
    expect(planLanceSearch({ ...base, totalRows: 100_000, visibleRows: 1000, index: flat })).toEqual({ index: 'ivf', nprobes: 300, postfilter: false, limit: 10, exact: true });
    expect(planLanceSearch({ ...base, totalRows: 100_000, visibleRows: 1000, index: { kind: 'ivf_pq', partitions: 300 } })).toMatchObject({ index: 'flat', postfilter: false, exact: true });
    expect(planLanceSearch({ ...base, totalRows: 800, visibleRows: 10, index: null })).toMatchObject({ index: 'flat', postfilter: false, exact: true });
    // In between: the index with the configured probes, pre-filtered.
    expect(planLanceSearch({ ...base, totalRows: 100_000, visibleRows: 1001, index: flat })).toEqual({ index: 'ivf', nprobes: 20, postfilter: false, limit: 10, exact: false });
  });

  it('caches visible-row counts per filter for a while, sharing one count among concurrent askers', async () => {
    let now = 0;
    let calls = 0;
    const cache = new VisibleRowsCache({ ttlMs: 100, maxEntries: 2, now: () => now });
    const count = (n: number) => async () => { calls++; await new Promise((r) => setTimeout(r, 5)); return n; };
    expect(await Promise.all([cache.get('a', count(1)), cache.get('a', count(2))])).toEqual([1, 1]);
    expect(calls).toBe(1);
    now = 99;
    expect(await cache.get('a', count(3))).toBe(1);
    now = 100;
    expect(await cache.get('a', count(4))).toBe(4);
    await cache.get('b', count(5));
    await cache.get('c', count(6));
    expect(await cache.get('a', count(7))).toBe(7); // evicted as the least recently refreshed
    expect(calls).toBe(5);
    await expect(cache.get('d', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await cache.get('d', count(8))).toBe(8); // a failed count is not cached
  });
});

describe('LanceDB vector index in the background', () => {
  const openStore = lanceStores('lancedb-index');
  async function open(index: Partial<LanceIndexSettings>, opts: { optimizeEvery?: number; indexCheckIntervalMs?: number } = {}) {
    const events: unknown[] = [];
    const { store } = await openStore({ index, optimizeEvery: opts.optimizeEvery ?? 7, indexCheckIntervalMs: opts.indexCheckIntervalMs ?? 0, onIndexEvent: (e) => events.push(e) });
    return { store, events };
  }
  const pointsOf = (r: () => number, n: number, over: (i: number) => Partial<ChunkPoint> = () => ({})) =>
    Array.from({ length: n }, (_, i) => point({ vector: randomVector(r), acl: [`group:g${i % 5}`], ...over(i) }));
  /** Every point, searched by its own vector through the approximate plan, comes back first. */
  async function expectAllFindable(store: VectorStore, pts: ChunkPoint[]) {
    for (const p of pts) {
      const [top] = await store.search(p.vector, filter({ principals: p.acl }), 1);
      expect(top?.point.id, `point ${p.id}`).toBe(p.id);
    }
  }

  it('builds the indexes while writes go on, without losing or hiding a row, and retrains as the table grows', async () => {
    const r = rng(1);
    const { store, events } = await open({ vectorIndexFromRows: 300, scalarIndexFromRows: 100, exactMaxRows: -1, nprobes: 4096, retrainGrowth: 1.5 });
    const live = new Map<string, ChunkPoint>();
    const docs = Array.from({ length: 40 }, () => randomUUID());
    // Many small writes of every kind, concurrently, while the background work starts and runs.
    for (let round = 0; round < 12; round++) {
      const batch = pointsOf(r, 60, (i) => ({ documentId: docs[(round * 60 + i) % docs.length]!, chunkIndex: round * 100 + i }));
      const doomed = docs[round % docs.length]!;
      await Promise.all([
        store.upsert(batch).then(() => { for (const p of batch) live.set(p.id, p); }),
        store.setDocumentAcl(docs[(round + 7) % docs.length]!, ['group:moved']),
      ]);
      for (const p of live.values()) if (p.documentId === docs[(round + 7) % docs.length]) p.acl = ['group:moved'];
      if (round % 4 === 3) {
        await store.deleteDocument(doomed);
        for (const [id, p] of live) if (p.documentId === doomed) live.delete(id);
      }
    }
    await store.buildIndexes();
    expect(events.filter((e) => (e as { ok: boolean }).ok === false)).toEqual([]);
    const status = await store.indexStatus();
    expect(status.rows).toBe(live.size);
    expect(await store.count()).toBe(live.size);
    expect([...status.scalar].sort()).toEqual(['acl', 'documentId', 'sourceId']);
    // Retrained at least once (first built at ≥ 300 rows, retrained from 1.5× that) and only the newest vector index is kept.
    expect(status.vector).toHaveLength(1);
    expect(status.vector[0]!.trainedRows).toBeGreaterThanOrEqual(450);
    expect(status.vector[0]!.trainedRows * 1.5).toBeGreaterThan(status.rows);
    expect(status.unindexedRows).toBe(0);
    await expectAllFindable(store, [...live.values()]);
    expect(await store.search(live.values().next().value!.vector, filter({ principals: ['group:nobody'] }), 10)).toEqual([]);
  }, 120_000);

  it('finds rows written after the index was built before they are added to it', async () => {
    const r = rng(2);
    const { store } = await open({ vectorIndexFromRows: 200, scalarIndexFromRows: 1e9, exactMaxRows: -1, nprobes: 1 }, { optimizeEvery: 1e9, indexCheckIntervalMs: 1e9 });
    await store.upsert(pointsOf(r, 400));
    await store.buildIndexes();
    const fresh = pointsOf(r, 20, () => ({ acl: ['group:fresh'] }));
    await store.upsert(fresh);
    const status = await store.indexStatus();
    expect(status.vector).toHaveLength(1);
    expect(status.unindexedRows).toBe(20);
    await expectAllFindable(store, fresh);
    const all = await store.search(fresh[0]!.vector, filter({ principals: ['group:fresh'] }), 100);
    expect(all.map((h) => h.point.id).sort()).toEqual(fresh.map((p) => p.id).sort());
  }, 60_000);

  it('applies the permission filter exactly through the index: never a hit the filter refuses, and exact results when every partition is probed', async () => {
    const r = rng(3);
    const principals = ['group:a', 'group:b', 'group:c', 'user:x@acme.test', "group:o'brien", 'everyone'];
    const sources = ['s1', 's2', 's3'];
    const pts = Array.from({ length: 600 }, (_, i) => point({
      vector: randomVector(r), sourceId: sources[i % 3]!, lastModified: 1000 + (i % 50),
      acl: principals.filter(() => r() < 0.25),
    }));
    const reference = new MemoryVectorStore();
    await reference.init(DIM);
    await reference.upsert(pts);
    const { store: exactAnn } = await open({ vectorIndexFromRows: 100, scalarIndexFromRows: 1, exactMaxRows: -1, nprobes: 4096 });
    const { store: cheapAnn } = await open({ vectorIndexFromRows: 100, scalarIndexFromRows: 1, exactMaxRows: -1, nprobes: 1 });
    for (const s of [exactAnn, cheapAnn]) {
      await s.upsert(pts.slice(0, 500));
      await s.buildIndexes();
      await s.upsert(pts.slice(500)); // some rows outside the index
      expect((await s.indexStatus()).vector).toHaveLength(1);
    }
    for (let i = 0; i < 60; i++) {
      const spec: FilterSpec = {
        principals: principals.filter(() => r() < 0.3),
        ...(r() < 0.3 ? { sourceIds: sources.filter(() => r() < 0.5) } : {}),
        ...(r() < 0.3 ? { excludedSourceIds: [sources[i % 3]!] } : {}),
        ...(r() < 0.3 ? { modifiedAfter: 1000 + Math.floor(r() * 50) } : {}),
      };
      const q = randomVector(r);
      const f = filter(spec);
      const want = await reference.search(q, f, 10);
      const got = await exactAnn.search(q, f, 10);
      expect(got.map((h) => h.point.id), JSON.stringify(spec)).toEqual(want.map((h) => h.point.id));
      const cheap = await cheapAnn.search(q, f, 10);
      for (const h of cheap) expect(matches(f, h.point), JSON.stringify(spec)).toBe(true);
    }
  }, 120_000);

  it('post-filters broad filters, and still returns the exact visible top when the best-ranked rows are invisible', async () => {
    const r = rng(9);
    const reference = new MemoryVectorStore();
    await reference.init(DIM);
    const q = randomVector(r);
    // 40 % of the rows, hidden from the caller, sit right next to the query: post-filtering alone would come up short.
    const pts = pointsOf(r, 300, (i) => (i % 5 < 2 ? { acl: ['group:hidden'], vector: q.map((x) => x + (r() - 0.5) * 0.2) } : { acl: ['group:most'] }));
    await reference.upsert(pts);
    const { store } = await open({ vectorIndexFromRows: 1e9, scalarIndexFromRows: 1e9, exactMaxRows: 10_000 });
    await store.upsert(pts);
    for (const principals of [['group:most'], ['group:most', 'group:hidden'], ['group:hidden']]) {
      const f = filter({ principals });
      for (const k of [1, 10, 100, 300]) {
        const got = await store.search(q, f, k);
        expect(got.map((h) => h.point.id), `${principals} top ${k}`).toEqual((await reference.search(q, f, k)).map((h) => h.point.id));
        for (const h of got) expect(matches(f, h.point)).toBe(true);
      }
    }
  }, 60_000);

  it('searches exactly when the filter lets few rows through, whatever the index would miss', async () => {
    const r = rng(4);
    const reference = new MemoryVectorStore();
    await reference.init(DIM);
    const pts = pointsOf(r, 1000, (i) => ({ acl: i % 50 === 0 ? ['group:rare'] : ['group:common'] }));
    await reference.upsert(pts);
    // One probed partition of ~32: the approximate plan would see about 1 of the 20 rare rows.
    const { store } = await open({ vectorIndexFromRows: 100, scalarIndexFromRows: 1, exactMaxRows: 50, nprobes: 1 });
    await store.upsert(pts);
    await store.buildIndexes();
    for (let i = 0; i < 10; i++) {
      const q = randomVector(r);
      const f = filter({ principals: ['group:rare'] });
      expect((await store.search(q, f, 10)).map((h) => h.point.id)).toEqual((await reference.search(q, f, 10)).map((h) => h.point.id));
    }
  }, 60_000);
});

describe('LanceDB bulk insert', () => {
  it('appends new points with every field intact, searchable and counted like upserted ones', async () => {
    const dir = await tempDir();
    const store = new LanceDbVectorStore({ dir });
    try {
      await store.init(DIM);
      const r = rng(5);
      const pts = Array.from({ length: 30 }, (_, i) => point({ vector: randomVector(r), acl: [`group:g${i % 3}`], sectionPath: ['A', 'B'], generation: 3 }));
      await store.insertNew(pts.slice(0, 20));
      await store.upsert(pts.slice(20));
      expect(await store.count()).toBe(30);
      const [hit] = await store.search(pts[4]!.vector, filter({ principals: pts[4]!.acl }), 1);
      const { vector: _v, ...expected } = pts[4]!;
      expect(hit!.point).toMatchObject(expected);
      expect(await store.search(pts[4]!.vector, filter({ principals: ['group:none'] }), 5)).toEqual([]);
    } finally {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Rewriting the LanceDB table in ACL order (src/vectorstore/lancedb-layout.ts): every row keeps
 * its content and permissions, rows with the same ACL end up side by side, and a row another
 * process changes or deletes while the rewrite runs is neither reverted nor brought back.
 */
import { randomUUID } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rng } from '../src/bench/corpus.ts';
import type { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';
import type { LanceIndexSettings } from '../src/vectorstore/lancedb-index.ts';
import { aclKey, aclOrder, countRuns, orderByAcl, readLayout } from '../src/vectorstore/lancedb-layout.ts';
import type { ChunkPoint } from '../src/vectorstore/interface.ts';
import { lanceStores } from './support/lancedb-stores.ts';
import { DIM, filter, point } from './support/vectorstore-conformance.ts';

describe('ACL order (pure parts)', () => {
  it('gives equal keys to equal principal sets, whatever their order, and different keys otherwise', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 6 }), fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 6 }), (a, b) => {
      expect(aclKey(a)).toBe(aclKey([...a].reverse()));
      const same = a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
      expect(aclKey(a) === aclKey(b)).toBe(same);
    }));
    // A principal containing the separator of another pair cannot collide with that pair.
    expect(aclKey(['a b'])).not.toBe(aclKey(['a', 'b']));
  });

  it('orders rows by ACL, keeping the physical order of rows with the same ACL, and counts runs', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 200 }), (values) => {
      const ranks = Uint32Array.from(values);
      const order = aclOrder({ ranks });
      expect([...order].sort((a, b) => a - b)).toEqual(values.map((_, i) => i));
      for (let i = 1; i < order.length; i++) {
        const [a, b] = [order[i - 1]!, order[i]!];
        expect(ranks[a]! < ranks[b]! || (ranks[a] === ranks[b] && a < b)).toBe(true);
      }
      expect(countRuns(Array.from(order, (i) => ranks[i]!))).toBe(new Set(values).size);
      let runs = 0;
      values.forEach((v, i) => { if (i === 0 || v !== values[i - 1]) runs++; });
      expect(countRuns(values)).toBe(runs);
    }));
  });
});

describe('ACL order of a LanceDB table', () => {
  const openStore = lanceStores('lancedb-layout');
  const open = (dir?: string, index?: Partial<LanceIndexSettings>) =>
    openStore({ dir, index, indexCheckIntervalMs: Number.POSITIVE_INFINITY, purgeGraceMs: 0, purgeDelayMs: 3_600_000 });
  const GROUPS = ['group:a', 'group:b', 'group:c', 'group:d', "group:o'hara"];
  /** Documents of 3 chunks each, written a few at a time, their ACLs interleaved as a sync writes them. */
  async function seed(store: LanceDbVectorStore, docs: number): Promise<ChunkPoint[]> {
    const r = rng(5);
    const points: ChunkPoint[] = [];
    for (let d = 0; d < docs; d++) {
      const acl = d % 7 === 6 ? [GROUPS[d % 5]!, GROUPS[(d + 1) % 5]!] : [GROUPS[d % 5]!];
      for (let c = 0; c < 3; c++) {
        points.push(point({ documentId: `doc-${d}`, chunkIndex: c, acl: d % 2 ? [...acl].reverse() : acl, vector: Array.from({ length: DIM }, () => r() - 0.5), sectionPath: [`s${d}`], text: `doc ${d} chunk ${c} marker-${d}-${c}` }));
      }
    }
    for (let i = 0; i < points.length; i += 30) await store.upsert(points.slice(i, i + 30));
    return points;
  }
  const table = (store: LanceDbVectorStore) => (store as unknown as { table: lancedb.Table }).table;
  /**
   * A `write` for orderByAcl whose table lets another process write once: just before the first
   * call chain that starts at `method` reaches LanceDB (its `execute` or `toArrow`).
   */
  function interferingWrite(store: LanceDbVectorStore, method: 'mergeInsert' | 'takeRowIds', interfere: () => Promise<void>) {
    let interfered = false;
    const deferred = (target: object): object => new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (prop === 'execute' || prop === 'toArrow'
          ? interfere().then(() => (value as (...a: unknown[]) => unknown).apply(t, args))
          : deferred((value as (...a: unknown[]) => object).apply(t, args)));
      },
    });
    const write = async <T>(fn: (t: lancedb.Table) => Promise<T>): Promise<T> => fn(new Proxy(table(store), {
      get(target, prop, receiver) {
        if (prop !== method || interfered) return Reflect.get(target, prop, receiver);
        interfered = true;
        return (...args: unknown[]) => deferred((target[method] as (...a: unknown[]) => object).apply(target, args));
      },
    }));
    return { write, interfered: () => interfered };
  }
  /** Every row as the store returns it, by id. */
  async function snapshot(store: LanceDbVectorStore, points: ChunkPoint[]) {
    const out = new Map<string, unknown>();
    for (const doc of new Set(points.map((p) => p.documentId))) {
      for (const chunk of await store.documentChunks(doc, 1)) out.set(chunk.id, chunk);
    }
    return out;
  }

  it('puts rows with the same ACL side by side without changing any row or any search result', async () => {
    const { store } = await open();
    const points = await seed(store, 60);
    const before = await snapshot(store, points);
    const layoutBefore = await readLayout(table(store));
    expect(layoutBefore.runs).toBeGreaterThan(layoutBefore.acls * 2);
    const searches = [['group:a'], ['group:b', 'group:c'], ["group:o'hara"], ['group:nobody']].map((principals) => filter({ principals }));
    const ranked = async () => Promise.all(searches.map(async (f) => (await store.search(points[0]!.vector, f, 200)).map((h) => [h.point.id, h.score.toFixed(6)])));
    const results = await ranked();

    const report = await store.orderByAcl({ batchRows: 40 });
    expect(report.rowsRewritten).toBe(points.length);
    expect(report.runsBefore).toBe(layoutBefore.runs);
    const after = await readLayout(table(store));
    expect(after.rowIds.length).toBe(points.length);
    expect(after.runs).toBe(after.acls);
    expect(after.acls).toBe(new Set(points.map((p) => aclKey(p.acl))).size);
    expect(await snapshot(store, points)).toEqual(before);
    expect(await ranked()).toEqual(results);
    expect(await store.count()).toBe(points.length);
    // Ordered already: a second pass reads and rewrites nothing.
    const again = await store.orderByAcl();
    expect(again).toMatchObject({ skipped: 'ordered', rowsRewritten: 0 });
  }, 60_000);

  it('never reverts a row another process changed while it was being moved, nor brings back one it deleted', async () => {
    const { store, dir } = await open();
    const points = await seed(store, 40);
    const { store: other } = await open(dir);
    const changed = points.find((p) => p.acl[0] === 'group:a')!.documentId;
    const deleted = points.find((p) => p.acl[0] === 'group:b')!.documentId;
    const reindexed = points.find((p) => p.acl[0] === 'group:c')!.documentId;
    // The other process writes between this process's read of a batch and its merge of it.
    const { write, interfered } = interferingWrite(store, 'mergeInsert', async () => {
      await other.setDocumentAcl(changed, ['group:new']);
      await other.deleteDocument(deleted);
      const fresh = points.filter((p) => p.documentId === reindexed).map((p) => ({ ...p, generation: 2, id: randomUUID(), text: `${p.text} v2` }));
      await other.upsert(fresh);
      await other.deleteDocument(reindexed, { keepGeneration: 2 });
    });
    // One batch holds every row, so the rows the other process touched were read before it wrote.
    await orderByAcl(table(store), write, { schema: (store as unknown as { schema: never }).schema, batchRows: 10_000 });
    expect(interfered()).toBe(true);

    const moved = await store.documentChunks(changed, 1);
    expect(moved).toHaveLength(3);
    for (const c of moved) expect(c.acl).toEqual(['group:new']);
    expect(await store.count({ documentId: deleted })).toBe(0);
    expect((await store.documentChunks(reindexed, 2)).map((c) => c.text).sort()).toEqual(points.filter((p) => p.documentId === reindexed).map((p) => `${p.text} v2`).sort());
    expect(await store.documentChunks(reindexed, 1)).toEqual([]);
    expect(await store.count()).toBe(points.length - 3);
    // Nobody outside the new ACL finds the changed document, through any plan.
    const hits = await store.search(points.find((p) => p.documentId === changed)!.vector, filter({ principals: ['group:a'] }), 200);
    expect(hits.some((h) => h.point.documentId === changed)).toBe(false);
  }, 60_000);

  it('orders a table where nearly every document has its own ACL', async () => {
    const { store } = await open();
    const r = rng(9);
    const points: ChunkPoint[] = [];
    for (let d = 0; d < 90; d++) {
      const acl = d % 10 === 0 ? ['group:a'] : [`user:u${d}`, 'group:owners'];
      for (let c = 0; c < 2; c++) points.push(point({ documentId: `doc-${d}`, chunkIndex: c, acl, vector: Array.from({ length: DIM }, () => r() - 0.5), text: `doc ${d} chunk ${c}` }));
    }
    // Written in an order that interleaves the ACLs: every document's chunks apart.
    for (const c of [0, 1]) await store.upsert(points.filter((p) => p.chunkIndex === c));
    const before = await snapshot(store, points);
    const ranked = async () => Promise.all([['group:a'], ['user:u7', 'user:u8'], ['group:owners']].map(async (principals) =>
      (await store.search(points[3]!.vector, filter({ principals }), 200)).map((h) => [h.point.id, h.score.toFixed(6)])));
    const results = await ranked();
    const report = await store.orderByAcl({ batchRows: 1_000 });
    expect(report.rowsRewritten).toBe(points.length);
    const after = await readLayout(table(store));
    expect(after.acls).toBe(82);
    expect(after.runs).toBe(after.acls);
    expect(await snapshot(store, points)).toEqual(before);
    expect(await ranked()).toEqual(results);
  }, 60_000);

  it('leaves alone rows another process deleted or changed before their batch was read', async () => {
    const { store, dir } = await open();
    const points = await seed(store, 40);
    const { store: other } = await open(dir);
    const deleted = points.find((p) => p.acl[0] === 'group:b')!.documentId;
    const changed = points.find((p) => p.acl[0] === 'group:c')!.documentId;
    // The other process writes before this process reads the batch.
    const { write, interfered } = interferingWrite(store, 'takeRowIds', async () => {
      await other.deleteDocument(deleted);
      await other.setDocumentAcl(changed, ['group:new']);
    });
    const report = await orderByAcl(table(store), write, { schema: (store as unknown as { schema: never }).schema, batchRows: 10_000 });
    expect(interfered()).toBe(true);
    // Neither the deleted rows nor the changed ones (rewritten by the other process, so under new row ids) are moved.
    expect(report.rowsRewritten).toBe(points.length - 6);
    expect(await store.count({ documentId: deleted })).toBe(0);
    expect(await store.count()).toBe(points.length - 3);
    const moved = await store.documentChunks(changed, 1);
    expect(moved).toHaveLength(3);
    for (const c of moved) expect(c.acl).toEqual(['group:new']);
    const hits = await store.search(points.find((p) => p.documentId === changed)!.vector, filter({ principals: ['group:c'] }), 200);
    expect(hits.some((h) => h.point.documentId === changed)).toBe(false);
    const after = await readLayout(table(store));
    expect(after.runs).toBeLessThanOrEqual(after.acls + 1);
  }, 60_000);

  it('runs before the vector index is trained, and not when turned off', async () => {
    for (const orderByAclSetting of [true, false]) {
      const { store } = await open(undefined, { vectorIndexFromRows: 100, scalarIndexFromRows: 50, orderByAcl: orderByAclSetting });
      const points = await seed(store, 50);
      const { built } = await store.buildIndexes();
      const layout = await readLayout(table(store));
      if (orderByAclSetting) {
        expect(built?.layout).toMatchObject({ rows: points.length, rowsRewritten: points.length });
        expect(layout.runs).toBe(layout.acls);
      } else {
        expect(built?.layout).toBeUndefined();
        expect(layout.runs).toBeGreaterThan(layout.acls * 2);
      }
      const status = await store.indexStatus();
      expect(status.vector).toHaveLength(1);
      expect(status.unindexedRows).toBe(0);
      expect(await store.count()).toBe(points.length);
    }
  }, 60_000);
});

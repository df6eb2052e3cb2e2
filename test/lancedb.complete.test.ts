/**
 * LanceDB completes ranked hits by taking the rows they were ranked from (src/vectorstore/lancedb.ts,
 * complete): a compaction or a rewrite in between moves rows to new row ids, so what a hit gets
 * must be its own chunk's row, whatever its old row id names now.
 */
import * as lancedb from '@lancedb/lancedb';
import { describe, expect, it, vi } from 'vitest';
import type { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';
import type { ChunkPoint } from '../src/vectorstore/interface.ts';
import { lanceStores } from './support/lancedb-stores.ts';
import { QUERY, at, filter, point } from './support/vectorstore-conformance.ts';

describe('LanceDB completion of ranked hits', () => {
  const openStore = lanceStores('lancedb-complete');
  const open = (dir?: string) => openStore({ dir, indexCheckIntervalMs: Number.POSITIVE_INFINITY, optimizeEvery: 1_000, purgeGraceMs: 0, purgeDelayMs: 3_600_000 });
  /** Written in three writes, so three fragments that a compaction merges (every row gets a new row id). */
  async function seed(store: LanceDbVectorStore): Promise<ChunkPoint[]> {
    const pts = Array.from({ length: 24 }, (_, i) => point({
      documentId: `c-${i % 8}`, chunkIndex: i, vector: at(0.04 * i), acl: ['everyone'], text: `chunk ${i}`, sectionPath: [`S${i}`],
      ...(i % 2 ? { context: `around ${i}` } : {}),
    }));
    for (let i = 0; i < pts.length; i += 8) await store.upsert(pts.slice(i, i + 8));
    return pts;
  }
  const everyone = filter({ principals: ['everyone'] });

  it('gives each hit its own row after another process moved every row', async () => {
    const { store, dir } = await open();
    await seed(store);
    const rowIds = async () => {
      const table = await (await lancedb.connect(dir)).openTable((await (await lancedb.connect(dir)).tableNames())[0]!);
      return new Set((await table.query().select(['id']).withRowId().toArray()).map((r) => String(r._rowid)));
    };
    const before = await rowIds();
    const ranked = [...await store.ranking!.search(QUERY, everyone, 10), ...await store.ranking!.keywordSearch('chunk', everyone, 10)];
    const { store: other } = await open(dir);
    // A rewrite (new ACL) and a compaction (every fragment merged): every row id the ranking saw is stale.
    await other.setDocumentAcl('c-1', ['everyone', 'group:x']);
    await other.buildIndexes();
    const after = await rowIds();
    expect([...after].filter((id) => before.has(id))).toEqual([]);
    const full = new Map((await store.search(QUERY, everyone, 100)).map((h) => [h.point.id, h.point]));
    const completed = await store.ranking!.complete(ranked);
    expect(completed.map((h) => h.point.id)).toEqual(ranked.map((h) => h.point.id));
    for (const h of completed) expect(h.point).toEqual(full.get(h.point.id));
    expect(completed.filter((h) => h.point.documentId === 'c-1').every((h) => h.point.acl.includes('group:x'))).toBe(true);
  });

  it('never hands a hit the row of another chunk, and leaves out a chunk deleted since', async () => {
    const { store } = await open();
    const pts = await seed(store);
    const ranked = await store.ranking!.search(QUERY, everyone, 6);
    // The hit objects stay those the ranking returned; the first now names a chunk that was not ranked.
    const unranked = pts.find((p) => !ranked.some((h) => h.point.id === p.id))!;
    Object.assign(ranked[0]!.point, { id: unranked.id, documentId: unranked.documentId });
    const gone = ranked[1]!.point.documentId;
    await store.deleteDocument(gone);
    const completed = await store.ranking!.complete(ranked);
    expect(completed[0]!.point.id).toBe(unranked.id);
    expect(completed[0]!.point.text).toBe(unranked.text);
    expect(completed[0]!.point.sectionPath).toEqual(unranked.sectionPath);
    expect(completed.some((h) => h.point.documentId === gone)).toBe(false);
    expect(completed.map((h) => h.point.id)).toEqual(ranked.filter((h) => h.point.documentId !== gone).map((h) => h.point.id));
  });

  it('takes the ranked rows by the row ids they were ranked at, and leaves the points as they were', async () => {
    const { store } = await open();
    await seed(store);
    const ranked = [...await store.ranking!.search(QUERY, everyone, 5), ...await store.ranking!.keywordSearch('chunk', everyone, 5)];
    // What a point carries for this is hidden: its keys and JSON are a plain ranked point's.
    for (const h of ranked) {
      expect(Object.keys(h.point).sort()).toEqual(Object.keys({ ...h.point }).sort());
      expect(JSON.stringify(h.point)).not.toMatch(/row/i);
    }
    const table = (store as unknown as { table: lancedb.Table }).table;
    const take = vi.spyOn(table, 'takeRowIds');
    const query = vi.spyOn(table, 'query');
    const completed = await store.ranking!.complete(ranked);
    expect(completed.map((h) => h.point.id)).toEqual(ranked.map((h) => h.point.id));
    expect(take).toHaveBeenCalledTimes(1);
    expect(new Set(take.mock.calls[0]![0]).size).toBe(new Set(ranked.map((h) => h.point.id)).size);
    expect(query).not.toHaveBeenCalled();
  });
});

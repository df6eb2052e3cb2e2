/**
 * One behavioural contract for every VectorStore adapter. The filter semantics are the product's
 * security boundary, so each case is phrased as "who sees what".
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildPermissionFilter, type PermissionFilter } from '../../src/access/index.ts';
import type { ChunkPoint, VectorStore } from '../../src/vectorstore/interface.ts';

export interface StoreHandle {
  store: VectorStore;
  /** Removes whatever the store left behind (temp dir, collection). */
  cleanup(): Promise<void>;
}

export const DIM = 8;

/** A unit vector at `angle` radians from the x axis: its cosine with `QUERY` is cos(angle). */
export const at = (angle: number): number[] => {
  const v = new Array<number>(DIM).fill(0);
  v[0] = Math.cos(angle);
  v[1] = Math.sin(angle);
  return v;
};
export const QUERY = at(0);

let seq = 0;
export function point(over: Partial<ChunkPoint> = {}): ChunkPoint {
  seq++;
  return {
    id: randomUUID(),
    vector: at(0.5),
    documentId: `doc-${seq}`,
    sourceId: 'src-a',
    generation: 1,
    chunkIndex: 0,
    sectionPath: [],
    text: `text ${seq}`,
    lastModified: 1_700_000_000_000,
    acl: ['everyone'],
    ...over,
  };
}

/** What a test asks for, in the vector-store terms it checks; always built by the one builder. */
export interface FilterSpec {
  principals: string[];
  sourceIds?: string[];
  excludedSourceIds?: string[];
  excludedDocumentIds?: string[];
  modifiedAfter?: number;
}
export const filter = (f: FilterSpec): PermissionFilter => buildPermissionFilter({
  principals: f.principals,
  requestedSourceIds: f.sourceIds,
  excludedSourceIds: f.excludedSourceIds,
  excludedDocumentIds: f.excludedDocumentIds,
  modifiedAfter: f.modifiedAfter === undefined ? undefined : new Date(f.modifiedAfter),
});

const withoutVec = ({ vector: _v, ...rest }: ChunkPoint) => rest;

export function runVectorStoreConformance(name: string, factory: () => Promise<StoreHandle>): void {
  describe(`VectorStore conformance: ${name}`, () => {
    let handle: StoreHandle;
    let store: VectorStore;

    beforeEach(async () => {
      handle = await factory();
      store = handle.store;
      await store.init(DIM);
    });
    afterEach(async () => {
      await store.close();
      await handle.cleanup();
    });

    const ids = async (spec: FilterSpec, topK = 100, vector = QUERY) =>
      (await store.search(vector, filter(spec), topK)).map((h) => h.point.id);
    const docs = async (spec: FilterSpec, topK = 100) =>
      (await store.search(QUERY, filter(spec), topK)).map((h) => h.point.documentId).sort();

    it('is idempotent on init and reachable', async () => {
      await store.init(DIM);
      await store.ping();
      expect(await store.count()).toBe(0);
    });

    it('returns hits ordered by cosine similarity with every field round-tripped', async () => {
      const angles = [0.9, 0.1, 0.5, 0.3, 0.7];
      const pts = angles.map((a, i) => point({ vector: at(a), chunkIndex: i, documentId: `ord-${i}` }));
      const full = point({
        vector: at(1.2), sectionPath: ['Part 1', 'Über § 2'], generation: 7, chunkIndex: 3,
        text: 'line 1\nline 2 🎉', lastModified: 1_650_000_000_123,
        acl: ['user:alice@acme.test', 'group:finance'],
      });
      await store.upsert([...pts, full]);
      const hits = await store.search(QUERY, filter({ principals: ['everyone', 'group:finance'] }), 10);
      expect(hits.map((h) => h.point.documentId)).toEqual(['ord-1', 'ord-3', 'ord-2', 'ord-4', 'ord-0', full.documentId]);
      for (const h of hits) {
        const angle = h.point.documentId === full.documentId ? 1.2 : angles[Number(h.point.documentId.slice(4))]!;
        expect(h.score).toBeCloseTo(Math.cos(angle), 5);
      }
      const { vector: _v, ...expected } = full;
      expect(hits[5]!.point).toEqual(expected);
      expect(hits[0]!.point).not.toHaveProperty('vector');
    });

    it('shows a chunk only to callers sharing at least one principal with its ACL', async () => {
      await store.upsert([
        point({ documentId: 'alice', acl: ['user:alice@acme.test'] }),
        point({ documentId: 'finance', acl: ['group:finance'] }),
        point({ documentId: 'bob-or-hr', acl: ['user:bob@acme.test', 'group:hr'] }),
        point({ documentId: 'all', acl: ['everyone'] }),
        point({ documentId: 'nobody', acl: [] }),
      ]);
      expect(await docs({ principals: ['user:alice@acme.test', 'group:hr'] })).toEqual(['alice', 'bob-or-hr']);
      expect(await docs({ principals: ['everyone'] })).toEqual(['all']);
      expect(await docs({ principals: ['group:finance', 'everyone', 'group:finance'] })).toEqual(['all', 'finance']);
      // Exact matching only: no prefixes, no case folding, no wildcards, no domain expansion.
      expect(await docs({ principals: ['user:alice@acme.test.evil', 'group:Finance', 'group:finance%', 'group:%', 'group:*', 'domain:acme.test', 'group:hr '] })).toEqual([]);
      expect(await docs({ principals: ['', 'user:alice', 'USER:ALICE@ACME.TEST'] })).toEqual([]);
    });

    it('accepts only filters built by buildPermissionFilter', async () => {
      await store.upsert([point({ acl: ['everyone'] })]);
      const handMade = { principals: ['everyone'] } as unknown as PermissionFilter;
      await expect(store.search(QUERY, handMade, 10)).rejects.toThrow(/buildPermissionFilter/);
      await expect(store.search(QUERY, { ...filter({ principals: ['everyone'] }) }, 10)).rejects.toThrow(/buildPermissionFilter/);
      expect(await store.search(QUERY, filter({ principals: ['everyone'] }), 10)).toHaveLength(1);
    });

    it('never returns chunks of excluded sources or documents (disabled, quarantined)', async () => {
      await store.upsert([
        point({ documentId: 'a1', sourceId: 'src-a' }),
        point({ documentId: 'a2', sourceId: 'src-a' }),
        point({ documentId: 'b1', sourceId: 'src-b' }),
        point({ documentId: 'c1', sourceId: 'src-c' }),
      ]);
      expect(await docs({ principals: ['everyone'], excludedSourceIds: ['src-b'] })).toEqual(['a1', 'a2', 'c1']);
      expect(await docs({ principals: ['everyone'], excludedDocumentIds: ['a2', 'c1'] })).toEqual(['a1', 'b1']);
      expect(await docs({ principals: ['everyone'], sourceIds: ['src-a', 'src-b'], excludedSourceIds: ['src-a'], excludedDocumentIds: ['b1'] })).toEqual([]);
      expect(await docs({ principals: ['everyone'], excludedSourceIds: ["src-a' OR '1'='1"], excludedDocumentIds: ['x"y'] })).toEqual(['a1', 'a2', 'b1', 'c1']);
    });

    it('fails closed on an empty principal list', async () => {
      await store.upsert([point({ acl: ['everyone'] }), point({ acl: [] })]);
      expect(await store.search(QUERY, filter({ principals: [] }), 100)).toEqual([]);
      expect(await store.search(QUERY, filter({ principals: [], sourceIds: ['src-a'] }), 100)).toEqual([]);
    });

    it('restricts to the given sources; an empty source list matches nothing', async () => {
      await store.upsert([
        point({ documentId: 'a1', sourceId: 'src-a' }),
        point({ documentId: 'b1', sourceId: 'src-b' }),
        point({ documentId: 'c1', sourceId: 'src-c' }),
        point({ documentId: 'b-secret', sourceId: 'src-b', acl: ['group:secret'] }),
      ]);
      const everyone = ['everyone'];
      expect(await docs({ principals: everyone })).toEqual(['a1', 'b1', 'c1']);
      expect(await docs({ principals: everyone, sourceIds: ['src-b'] })).toEqual(['b1']);
      expect(await docs({ principals: everyone, sourceIds: ['src-a', 'src-c', 'src-a'] })).toEqual(['a1', 'c1']);
      expect(await docs({ principals: everyone, sourceIds: [] })).toEqual([]);
      expect(await docs({ principals: everyone, sourceIds: ['src-zzz'] })).toEqual([]);
    });

    it('keeps chunks modified at or after modifiedAfter', async () => {
      await store.upsert([
        point({ documentId: 'old', lastModified: 999 }),
        point({ documentId: 'edge', lastModified: 1000 }),
        point({ documentId: 'new', lastModified: 1_700_000_000_000 }),
      ]);
      expect(await docs({ principals: ['everyone'], modifiedAfter: 1000 })).toEqual(['edge', 'new']);
      expect(await docs({ principals: ['everyone'], modifiedAfter: 1001 })).toEqual(['new']);
      expect(await docs({ principals: ['everyone'], modifiedAfter: 0 })).toEqual(['edge', 'new', 'old']);
      expect(await docs({ principals: ['everyone'], modifiedAfter: 1_800_000_000_000 })).toEqual([]);
    });

    it('counts topK among permitted chunks only (prefiltering), returning every visible chunk', async () => {
      // Many invisible chunks closer to the query than anything visible: a postfilter over the
      // nearest topK would return few or none of the visible ones.
      const hidden = Array.from({ length: 60 }, (_, i) => point({ vector: at(0.001 * i), acl: ['group:other'], documentId: `hidden-${i}` }));
      const otherSource = Array.from({ length: 30 }, (_, i) => point({ vector: at(0.1 + 0.001 * i), acl: ['group:me'], sourceId: 'src-x', documentId: `x-${i}` }));
      const oldOnes = Array.from({ length: 30 }, (_, i) => point({ vector: at(0.2 + 0.001 * i), acl: ['group:me'], lastModified: 10, documentId: `old-${i}` }));
      const visible = Array.from({ length: 7 }, (_, i) => point({ vector: at(1.0 + 0.1 * i), acl: ['group:me'], documentId: `vis-${i}` }));
      await store.upsert([...hidden, ...otherSource, ...oldOnes, ...visible]);
      const spec: FilterSpec = { principals: ['group:me', 'user:nobody@x.test'], sourceIds: ['src-a'], modifiedAfter: 1000 };
      const all = await store.search(QUERY, filter(spec), 50);
      expect(all.map((h) => h.point.id)).toEqual(visible.map((p) => p.id));
      expect(await ids(spec, 3)).toEqual(visible.slice(0, 3).map((p) => p.id));
      expect(await ids(spec, 7)).toEqual(visible.map((p) => p.id));
      expect(await ids(spec, 0)).toEqual([]);
    });

    it('changes visibility on setDocumentAcl without touching vectors or text', async () => {
      const chunks = [0.2, 0.4, 0.6].map((a, i) => point({ documentId: 'doc-acl', chunkIndex: i, vector: at(a), acl: ['user:a@x.test'] }));
      const other = point({ documentId: 'doc-other', acl: ['user:a@x.test'], vector: at(1.0) });
      await store.upsert([...chunks, other]);
      const before = await store.search(QUERY, filter({ principals: ['user:a@x.test'] }), 10);
      expect(before.map((h) => h.point.documentId)).toEqual(['doc-acl', 'doc-acl', 'doc-acl', 'doc-other']);

      await store.setDocumentAcl('doc-acl', ['user:b@x.test', 'group:g']);
      expect(await docs({ principals: ['user:a@x.test'] })).toEqual(['doc-other']);
      const after = await store.search(QUERY, filter({ principals: ['group:g'] }), 10);
      expect(after.map((h) => h.score)).toEqual(before.slice(0, 3).map((h) => h.score));
      expect(after.map((h) => ({ ...h.point, acl: [] }))).toEqual(before.slice(0, 3).map((h) => ({ ...h.point, acl: [] })));
      expect(after.every((h) => h.point.acl.join() === 'user:b@x.test,group:g')).toBe(true);
      expect(await store.count()).toBe(4);

      await store.setDocumentAcl('doc-acl', []);
      expect(await docs({ principals: ['user:a@x.test', 'user:b@x.test', 'group:g', 'everyone'] })).toEqual(['doc-other']);
      await store.setDocumentAcl('doc-missing', ['everyone']);
      expect(await store.count()).toBe(4);
    });

    it('deletes a document entirely, or only its stale generations', async () => {
      await store.upsert([
        point({ documentId: 'd', generation: 1, chunkIndex: 0 }),
        point({ documentId: 'd', generation: 1, chunkIndex: 1 }),
        point({ documentId: 'd', generation: 2, chunkIndex: 0 }),
        point({ documentId: 'd', generation: 3, chunkIndex: 0 }),
        point({ documentId: 'e', generation: 1 }),
      ]);
      await store.deleteDocument('d', { keepGeneration: 2 });
      expect(await store.count({ documentId: 'd' })).toBe(1);
      const left = await store.search(QUERY, filter({ principals: ['everyone'] }), 10);
      expect(left.filter((h) => h.point.documentId === 'd').map((h) => h.point.generation)).toEqual([2]);
      await store.deleteDocument('d');
      expect(await store.count({ documentId: 'd' })).toBe(0);
      expect(await store.count({ documentId: 'e' })).toBe(1);
      await store.deleteDocument('never-existed');
      expect(await store.count()).toBe(1);
    });

    it('returns one generation of a document in chunk order, every field but the vector (document fetch)', async () => {
      const many = Array.from({ length: 300 }, (_, i) => point({ documentId: "d'1", generation: 2, chunkIndex: 299 - i, text: `part ${299 - i}`, sectionPath: ['A', `s${i}`] }));
      await store.upsert([...many, point({ documentId: "d'1", generation: 1, chunkIndex: 0 }), point({ documentId: 'other', generation: 2 })]);
      const chunks = await store.documentChunks("d'1", 2);
      expect(chunks.map((c) => c.chunkIndex)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(chunks[5]).toEqual({ ...withoutVec(many[294]!) });
      expect(chunks[0]).not.toHaveProperty('vector');
      expect(await store.documentChunks("d'1", 7)).toEqual([]);
      expect(await store.documentChunks('nope', 2)).toEqual([]);
    });

    it('deletes every chunk of a source and nothing else', async () => {
      await store.upsert([
        point({ sourceId: 's1' }), point({ sourceId: 's1' }), point({ sourceId: 's2' }), point({ sourceId: 's10' }),
      ]);
      await store.deleteSource('s1');
      expect(await store.count({ sourceId: 's1' })).toBe(0);
      expect(await store.count({ sourceId: 's2' })).toBe(1);
      expect(await store.count({ sourceId: 's10' })).toBe(1);
      expect(await store.count()).toBe(2);
    });

    it('counts by source, by document and by both', async () => {
      await store.upsert([
        point({ sourceId: 's1', documentId: 'd1' }), point({ sourceId: 's1', documentId: 'd1' }),
        point({ sourceId: 's1', documentId: 'd2' }), point({ sourceId: 's2', documentId: 'd3' }),
      ]);
      expect(await store.count()).toBe(4);
      expect(await store.count({})).toBe(4);
      expect(await store.count({ sourceId: 's1' })).toBe(3);
      expect(await store.count({ documentId: 'd1' })).toBe(2);
      expect(await store.count({ sourceId: 's1', documentId: 'd3' })).toBe(0);
      expect(await store.count({ sourceId: 's2', documentId: 'd3' })).toBe(1);
    });

    it('overwrites a point re-upserted under the same id', async () => {
      const p = point({ documentId: 'v1', text: 'first', acl: ['group:old'], vector: at(0.3) });
      await store.upsert([p]);
      await store.upsert([{ ...p, documentId: 'v2', text: 'second', acl: ['group:new'], vector: at(0.6) }]);
      await store.upsert([{ ...p, documentId: 'v2', text: 'second', acl: ['group:new'], vector: at(0.6) }]);
      expect(await store.count()).toBe(1);
      expect(await store.search(QUERY, filter({ principals: ['group:old'] }), 10)).toEqual([]);
      const [hit] = await store.search(QUERY, filter({ principals: ['group:new'] }), 10);
      expect(hit!.point).toMatchObject({ id: p.id, documentId: 'v2', text: 'second' });
      expect(hit!.score).toBeCloseTo(Math.cos(0.6), 5);

      // Duplicates within one batch: the last one wins. Upper-case UUIDs name the same point.
      const q = point({ text: 'a' });
      await store.upsert([q, { ...q, text: 'b' }, { ...q, id: q.id.toUpperCase(), text: 'c' }]);
      expect(await store.count()).toBe(2);
      const texts = (await store.search(QUERY, filter({ principals: ['everyone'] }), 10)).map((h) => [h.point.id, h.point.text]);
      expect(texts).toEqual([[q.id, 'c']]);
    });

    it('keeps what was written when the caller changes its arrays afterwards', async () => {
      const p = point({ documentId: 'kept', acl: ['group:a'], sectionPath: ['Part'], vector: at(0.4) });
      const upserting = store.upsert([p]);
      // Both before the write settles and after it: an ACL widened in the caller's array must grant nothing.
      p.acl.push('everyone');
      p.sectionPath.push('Changed');
      p.vector.fill(0);
      await upserting;
      p.acl.push('group:b');
      expect(await docs({ principals: ['everyone', 'group:b'] })).toEqual([]);
      const [hit] = await store.search(QUERY, filter({ principals: ['group:a'] }), 10);
      expect(hit!.point).toMatchObject({ acl: ['group:a'], sectionPath: ['Part'] });
      expect(hit!.score).toBeCloseTo(Math.cos(0.4), 5);
    });

    it('treats hostile strings in principals and ids as plain data', async () => {
      const hostile = [
        "user:o'brien@acme.test", ...["x' OR '1'='1", "x') OR true OR ('", 'a\\', "a\\'b", 'a"b', 'line\nbreak',
          '%', '_', '*', "'; DROP TABLE chunks; --", 'ünï🎉', "a''b", '[]', '{"$ne":null}'].map((h) => `group:${h}`),
      ];
      const pts = hostile.map((h, i) => point({ documentId: `doc:${h}`, sourceId: `src:${h}`, acl: [h], vector: at(0.01 * (i + 1)) }));
      const bystander = point({ documentId: 'bystander', sourceId: 'src-plain', acl: ['group:plain'] });
      await store.upsert([...pts, bystander]);
      for (const [i, h] of hostile.entries()) {
        expect(await ids({ principals: [h] }), `principal ${JSON.stringify(h)}`).toEqual([pts[i]!.id]);
        expect(await ids({ principals: hostile, sourceIds: [`src:${h}`] }), `source ${JSON.stringify(h)}`).toEqual([pts[i]!.id]);
        expect(await store.count({ documentId: `doc:${h}` })).toBe(1);
        expect(await store.count({ sourceId: `src:${h}` })).toBe(1);
      }
      expect(await ids({ principals: ["group:plain' OR '1'='1", "group:x' OR '1'='1"] })).toEqual([pts[1]!.id]);

      await store.setDocumentAcl(`doc:${hostile[1]}`, ["group:new'acl", 'group:b\\']);
      expect(await ids({ principals: ["group:new'acl"] })).toEqual([pts[1]!.id]);
      expect(await ids({ principals: ['group:b\\'] })).toEqual([pts[1]!.id]);
      expect(await ids({ principals: ['group:plain'] })).toEqual([bystander.id]);

      await store.deleteDocument(`doc:${hostile[1]}`);
      await store.deleteDocument("bystander' OR '1'='1");
      await store.deleteSource("src-plain' OR '1'='1");
      await store.deleteSource(`src:${hostile[2]}`);
      expect(await store.count()).toBe(hostile.length - 1);
      expect(await store.count({ documentId: 'bystander' })).toBe(1);
    });

    describe('keyword channel (BM25 over the shared analyzer)', () => {
      const kw = async (query: string, spec: FilterSpec = { principals: ['everyone'] }, topK = 100) =>
        (await store.keywordSearch(query, filter(spec), topK)).map((h) => h.point.documentId);

      it('ranks by BM25 with stemming and stop words, keeps identifiers whole, and returns only chunks sharing a term', async () => {
        await store.upsert([
          point({ documentId: 'exact', text: 'Outage INC-4711 was resolved by restarting the gateways.' }),
          point({ documentId: 'near', text: 'Ticket INC-4712 tracks the inc backlog.' }),
          point({ documentId: 'code', text: 'The client failed with ERR_CONN_RESET after upgrading to v2.3.1; mail ops@acme.test.' }),
          point({ documentId: 'none', text: 'Quarterly budget planning notes.' }),
        ]);
        expect((await kw('INC-4711'))[0]).toBe('exact');
        expect(await kw('INC-4711')).not.toContain('none');
        expect((await kw('inc-4711')).slice(0, 2)).toEqual(['exact', 'near']);
        expect(await kw('restart gateway')).toEqual(['exact']);
        expect(await kw('ERR_CONN_RESET')).toEqual(['code']);
        expect(await kw('v2.3.1')).toEqual(['code']);
        expect(await kw('ops@acme.test')).toEqual(['code']);
        expect(await kw('the and of')).toEqual([]);
        expect(await kw('')).toEqual([]);
        expect(await kw('zzzunknownterm')).toEqual([]);
        const [top, second] = await store.keywordSearch('INC-4711', filter({ principals: ['everyone'] }), 10);
        expect(top!.score).toBeGreaterThan(second!.score);
        expect(top!.score).toBeGreaterThan(0);
      });

      it('returns the best matches first, not the first matches stored, however the writes came in', async () => {
        // Weak matches written first and in many batches, the strong ones last.
        for (let b = 0; b < 4; b++) {
          await store.upsert(Array.from({ length: 40 }, (_, i) => point({ documentId: `weak-${b}-${i}`, text: `gateway ${'filler words here '.repeat(1 + (i % 5))}` })));
        }
        await store.upsert([
          point({ documentId: 'best', text: 'gateway timeout gateway timeout' }),
          point({ documentId: 'second', text: 'gateway timeout in the logs of the proxy service today' }),
        ]);
        expect((await kw('gateway timeout', { principals: ['everyone'] }, 2))).toEqual(['best', 'second']);
        const all = await store.keywordSearch('gateway timeout', filter({ principals: ['everyone'] }), 500);
        expect(all).toHaveLength(162);
        for (let i = 1; i < all.length; i++) expect(all[i - 1]!.score).toBeGreaterThanOrEqual(all[i]!.score);
      });

      it('indexes the heading path with the text and returns the stored context', async () => {
        const p = point({ documentId: 'sec', sectionPath: ['Security policy', 'Breach notification'], text: 'Within 72 hours.', context: 'Before. Within 72 hours. After.' });
        await store.upsert([p, point({ documentId: 'other', text: 'Unrelated.' })]);
        const [hit] = await store.keywordSearch('breach notification', filter({ principals: ['everyone'] }), 10);
        expect(hit!.point.documentId).toBe('sec');
        expect(hit!.point.context).toBe('Before. Within 72 hours. After.');
        const [viaVector] = await store.search(p.vector, filter({ principals: ['everyone'] }), 1);
        expect(viaVector!.point.context).toBe('Before. Within 72 hours. After.');
      });

      it('applies the permission filter before ranking: every visible match, no invisible one', async () => {
        const hidden = Array.from({ length: 60 }, (_, i) => point({ documentId: `hidden-${i}`, acl: ['group:other'], text: 'INC-4711 INC-4711 INC-4711 outage' }));
        const visible = Array.from({ length: 5 }, (_, i) => point({ documentId: `vis-${i}`, acl: ['group:me'], text: `INC-4711 mentioned once among many other words number ${i}` }));
        const wrongSource = point({ documentId: 'x', acl: ['group:me'], sourceId: 'src-x', text: 'INC-4711' });
        const old = point({ documentId: 'old', acl: ['group:me'], lastModified: 10, text: 'INC-4711' });
        const excluded = point({ documentId: 'quarantined', acl: ['group:me'], text: 'INC-4711' });
        await store.upsert([...hidden, ...visible, wrongSource, old, excluded]);
        const spec: FilterSpec = { principals: ['group:me'], sourceIds: ['src-a'], modifiedAfter: 1000, excludedDocumentIds: ['quarantined'] };
        expect((await kw('INC-4711', spec, 50)).sort()).toEqual(visible.map((p) => p.documentId).sort());
        expect(await kw('INC-4711', spec, 3)).toHaveLength(3);
        expect(await kw('INC-4711', spec, 0)).toEqual([]);
        expect(await kw('INC-4711', { principals: [] })).toEqual([]);
        expect(await kw('INC-4711', { principals: ['group:me'], sourceIds: [] })).toEqual([]);
        expect(await kw('INC-4711', { principals: ['group:me'], excludedSourceIds: ['src-a'] })).toEqual(['x']);
        expect(await kw('INC-4711', { principals: ["group:me' OR '1'='1", 'group:Me'] })).toEqual([]);
        const handMade = { principals: ['group:other'] } as unknown as PermissionFilter;
        await expect(store.keywordSearch('INC-4711', handMade, 10)).rejects.toThrow(/buildPermissionFilter/);
      });

      it('follows ACL changes, re-upserts and deletions of the chunks', async () => {
        const a = point({ documentId: 'a', acl: ['user:a@x.test'], text: 'Runbook for ERR_DISK_FULL' });
        await store.upsert([a, point({ documentId: 'b', sourceId: 'src-b', text: 'ERR_DISK_FULL again' })]);
        expect(await kw('ERR_DISK_FULL', { principals: ['user:a@x.test'] })).toEqual(['a']);
        await store.setDocumentAcl('a', ['group:g']);
        expect(await kw('ERR_DISK_FULL', { principals: ['user:a@x.test'] })).toEqual([]);
        expect(await kw('ERR_DISK_FULL', { principals: ['group:g'] })).toEqual(['a']);
        await store.upsert([{ ...a, acl: ['group:g'], text: 'Runbook rewritten' }]);
        expect(await kw('ERR_DISK_FULL', { principals: ['group:g'] })).toEqual([]);
        expect(await kw('rewritten', { principals: ['group:g'] })).toEqual(['a']);
        await store.deleteDocument('a');
        expect(await kw('rewritten', { principals: ['group:g'] })).toEqual([]);
        expect(await kw('ERR_DISK_FULL')).toEqual(['b']);
        await store.deleteSource('src-b');
        expect(await kw('ERR_DISK_FULL')).toEqual([]);
      });
    });

    it('ranks through `ranking` exactly as the full searches do, and completes only chunks still there', async (ctx) => {
      const ranking = store.ranking;
      if (!ranking) return ctx.skip();
      const pts = Array.from({ length: 30 }, (_, i) => point({
        documentId: `r-${i % 10}`, chunkIndex: i, vector: at(0.05 * i), acl: i % 3 === 0 ? ['group:a'] : ['group:b', 'everyone'],
        sourceId: i % 4 === 0 ? 'src-z' : 'src-a', sectionPath: [`Part ${i}`], text: `gateway runbook ${'step '.repeat(i % 5)}${i}`,
        ...(i % 2 ? { context: `around ${i}` } : {}),
      }));
      await store.upsert(pts);
      const specs: FilterSpec[] = [
        { principals: ['everyone'] }, { principals: ['group:a'] }, { principals: ['group:a', 'group:b'], sourceIds: ['src-a'] },
        { principals: ['group:b'], excludedDocumentIds: ['r-1'] }, { principals: [] }, { principals: ['group:a'], sourceIds: [] },
      ];
      const ranked = (hits: { point: { id: string; documentId: string; generation: number; acl: string[] }; score: number }[]) =>
        hits.map((h) => ({ id: h.point.id, documentId: h.point.documentId, generation: h.point.generation, acl: [...h.point.acl].sort(), score: Number(h.score.toFixed(5)) }));
      for (const spec of specs) {
        for (const k of [1, 7, 100]) {
          const full = await store.search(QUERY, filter(spec), k);
          expect(ranked(await ranking.search(QUERY, filter(spec), k)), JSON.stringify(spec)).toEqual(ranked(full));
          const fullKw = await store.keywordSearch('gateway step', filter(spec), k);
          expect(ranked(await ranking.keywordSearch('gateway step', filter(spec), k)), JSON.stringify(spec)).toEqual(ranked(fullKw));
          // Completed in the given order with the given scores (a fused list has its own), every field as the full search has it.
          const reordered = [...(await ranking.search(QUERY, filter(spec), k))].reverse().map((h, i) => ({ ...h, score: i }));
          expect(await ranking.complete(reordered)).toEqual([...full].reverse().map((h, i) => ({ ...h, score: i })));
        }
      }
      await expect(ranking.search(QUERY, { principals: ['everyone'] } as unknown as PermissionFilter, 5)).rejects.toThrow(/buildPermissionFilter/);
      const some = await ranking.search(QUERY, filter({ principals: ['everyone'] }), 5);
      await store.deleteDocument(some[1]!.point.documentId);
      const left = await ranking.complete(some);
      expect(left.map((h) => h.point.id)).toEqual(some.filter((h) => h.point.documentId !== some[1]!.point.documentId).map((h) => h.point.id));
      expect(await ranking.complete([])).toEqual([]);
    });

    it('rejects malformed points and query vectors before storing anything', async () => {
      await expect(store.upsert([point({ id: 'chunk-1' })])).rejects.toThrow(/UUID/);
      await expect(store.upsert([point({ vector: [1, 2, 3] })])).rejects.toThrow(/dimension/);
      await expect(store.upsert([point({ vector: [Number.NaN, ...at(0).slice(1)] })])).rejects.toThrow(/finite/);
      await expect(store.search([1, 2], filter({ principals: ['everyone'] }), 5)).rejects.toThrow(/dimension/);
      expect(await store.count()).toBe(0);
      await expect(store.init(DIM + 1)).rejects.toThrow();
    });
  });
}

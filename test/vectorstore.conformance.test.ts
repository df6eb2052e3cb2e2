import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterEach, describe, expect, it } from 'vitest';
import { LanceDbVectorStore, lancePermissionPredicate, sqlString } from '../src/vectorstore/lancedb.ts';
import { MemoryVectorStore } from '../src/vectorstore/memory.ts';
import { QdrantVectorStore } from '../src/vectorstore/qdrant.ts';
import { createVectorStore } from '../src/vectorstore/index.ts';
import { loadConfig } from '../src/config.ts';
import { DIM, QUERY, at, filter, point, runVectorStoreConformance } from './support/vectorstore-conformance.ts';

const tempDir = () => fs.mkdtemp(path.join(os.tmpdir(), 'clearance-lancedb-'));

runVectorStoreConformance('memory', async () => ({ store: new MemoryVectorStore(), cleanup: async () => {} }));

runVectorStoreConformance('lancedb', async () => {
  const dir = await tempDir();
  // A tiny optimize interval so compaction runs inside the suite too.
  return { store: new LanceDbVectorStore({ dir, optimizeEvery: 3 }), cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

// Housekeeping after every write with the ACL label-list index from the first row: the same
// semantics must hold when filters go through the index (and through unindexed new fragments).
runVectorStoreConformance('lancedb with ACL index', async () => {
  const dir = await tempDir();
  return { store: new LanceDbVectorStore({ dir, optimizeEvery: 1, aclIndexFromRows: 1 }), cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

describe.runIf(!!process.env.QDRANT_URL)('qdrant (live server from QDRANT_URL)', () => {
  runVectorStoreConformance('qdrant', async () => {
    const url = process.env.QDRANT_URL!;
    const apiKey = process.env.QDRANT_API_KEY || undefined;
    const collection = `clearance_test_${randomUUID().replace(/-/g, '')}`;
    return {
      store: new QdrantVectorStore({ url, apiKey, collection }),
      cleanup: async () => {
        await new QdrantClient({ url, apiKey, checkCompatibility: false }).deleteCollection(collection);
      },
    };
  });
});

describe('LanceDB specifics', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
  });

  it('escapes SQL string literals by doubling quotes only', () => {
    expect(sqlString("o'brien")).toBe("'o''brien'");
    expect(sqlString('a\\')).toBe("'a\\'");
    expect(lancePermissionPredicate(filter({ principals: ["group:x' OR '1'='1"], sourceIds: ['s'], modifiedAfter: 5 })))
      .toBe("(array_has_any(acl, ['group:x'' OR ''1''=''1'])) AND (sourceId IN ('s')) AND (lastModified >= 5)");
    expect(lancePermissionPredicate(filter({ principals: [] }))).toBeNull();
    expect(() => lancePermissionPredicate({ principals: ['everyone'] } as never)).toThrow(/buildPermissionFilter/);
  });

  it('persists across reopen and refuses a different dimension', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const first = new LanceDbVectorStore({ dir });
    await first.init(DIM);
    const p = point({ acl: ['group:g'], vector: at(0.25) });
    await first.upsert([p]);
    await first.close();

    const again = new LanceDbVectorStore({ dir });
    await again.init(DIM);
    const hits = await again.search(QUERY, filter({ principals: ['group:g'] }), 5);
    expect(hits.map((h) => h.point.id)).toEqual([p.id]);
    expect(hits[0]!.score).toBeCloseTo(Math.cos(0.25), 5);
    await again.close();

    await expect(new LanceDbVectorStore({ dir }).init(DIM * 2)).rejects.toThrow(/size 8.*produces 16/);
  });

  it('sees ACL changes committed by another process-level handle (strong read consistency)', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const api = new LanceDbVectorStore({ dir });
    const worker = new LanceDbVectorStore({ dir });
    await api.init(DIM);
    await worker.init(DIM);
    await worker.upsert([point({ documentId: 'd', acl: ['user:a@x.test'] })]);
    expect(await api.search(QUERY, filter({ principals: ['user:a@x.test'] }), 5)).toHaveLength(1);
    await worker.setDocumentAcl('d', ['user:b@x.test']);
    expect(await api.search(QUERY, filter({ principals: ['user:a@x.test'] }), 5)).toEqual([]);
    await api.close();
    await worker.close();
  });

  it('adds the ACL index once the table is large enough, and filters identically through it', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const store = new LanceDbVectorStore({ dir, optimizeEvery: 2, aclIndexFromRows: 10, indexCheckIntervalMs: 0 });
    await store.init(DIM);
    const listAclIndexes = async () => {
      const conn = await lancedb.connect(dir);
      const table = await conn.openTable('chunks');
      const found = (await table.listIndices()).filter((i) => i.columns.includes('acl')).map((i) => i.indexType);
      table.close();
      conn.close();
      return found;
    };
    const pts = Array.from({ length: 12 }, (_, i) => point({ vector: at(i / 12), acl: [`group:g${i % 3}`, "user:o'neil@x.test"] }));
    await store.upsert(pts.slice(0, 6));
    await store.upsert(pts.slice(6, 8));
    await store.indexingSettled();
    expect(await listAclIndexes()).toEqual([]);
    await store.upsert(pts.slice(8, 11));
    await store.upsert(pts.slice(11));
    // Built in the background after the write that crossed the threshold.
    await store.indexingSettled();
    expect(await listAclIndexes()).toEqual(['LabelList']);
    await store.upsert([point({ vector: at(0.01), acl: ['group:g1'] })]);
    const got = await store.search(QUERY, filter({ principals: ['group:g1'] }), 100);
    expect(got.map((h) => h.point.acl[0])).toEqual(['group:g1', 'group:g1', 'group:g1', 'group:g1', 'group:g1']);
    expect(await store.search(QUERY, filter({ principals: ["user:o'neil@x.test"] }), 100)).toHaveLength(12);
    await store.close();
  });

  it('serialises concurrent writes from one process', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const store = new LanceDbVectorStore({ dir, optimizeEvery: 5 });
    await store.init(DIM);
    const pts = Array.from({ length: 40 }, (_, i) => point({ documentId: `c-${i % 8}`, vector: at(i / 40) }));
    await Promise.all([
      ...pts.map((p) => store.upsert([p])),
      ...Array.from({ length: 8 }, (_, i) => store.setDocumentAcl(`c-${i}`, ['group:z'])),
    ]);
    expect(await store.count()).toBe(40);
    await store.close();
  });
});

describe('createVectorStore', () => {
  it('picks Qdrant when QDRANT_URL is set, LanceDB in the data dir otherwise', () => {
    const lance = createVectorStore(loadConfig({ CLEARANCE_DATA_DIR: '/tmp/clearance-x' }));
    expect(lance.kind).toBe('lancedb');
    const qdrant = createVectorStore(loadConfig({ QDRANT_URL: 'http://127.0.0.1:6333', QDRANT_COLLECTION: 'abc' }));
    expect(qdrant.kind).toBe('qdrant');
    expect((qdrant as QdrantVectorStore).collection).toBe('abc');
  });
});

describe('LanceDB keyword channel migration', () => {
  it('gives a table written before the keyword channel its terms from the stored text, keeping every vector', async () => {
    const dir = await tempDir();
    try {
      // The table as an earlier version wrote it: no terms, no context.
      const { Schema, Field, Utf8, Float64, Int32, FixedSizeList, Float32, List } = await import('apache-arrow');
      const strList = () => new List(new Field('item', new Utf8(), true));
      const schema = new Schema([
        new Field('id', new Utf8(), false), new Field('vector', new FixedSizeList(DIM, new Field('item', new Float32(), true)), false),
        new Field('documentId', new Utf8(), false), new Field('sourceId', new Utf8(), false), new Field('generation', new Float64(), false),
        new Field('chunkIndex', new Int32(), false), new Field('sectionPath', strList(), false), new Field('text', new Utf8(), false),
        new Field('lastModified', new Float64(), false), new Field('acl', strList(), false),
      ]);
      const old = Array.from({ length: 2_500 }, (_, i) => point({ documentId: `old-${i}`, vector: at(i / 2_500), text: i === 1234 ? 'Escalate INC-4711 now' : `routine ${i}`, sectionPath: i === 99 ? ['Breach notification'] : [] }));
      const conn = await lancedb.connect(dir);
      const table = await conn.createEmptyTable('chunks', schema);
      await table.add(old.map(({ context: _c, ...p }) => p) as unknown as Record<string, unknown>[]);
      const versionsBefore = (await table.query().select(['id', 'vector']).toArray()).map((r) => [r.id, Array.from(r.vector as Iterable<number>)]);
      table.close();
      conn.close();

      const store = new LanceDbVectorStore({ dir });
      await store.init(DIM);
      expect((await store.keywordSearch('INC-4711', filter({ principals: ['everyone'] }), 5)).map((h) => h.point.documentId)).toEqual(['old-1234']);
      expect((await store.keywordSearch('breach', filter({ principals: ['everyone'] }), 5)).map((h) => h.point.documentId)).toEqual(['old-99']);
      expect(await store.count()).toBe(2_500);
      await store.close();

      const again = await lancedb.connect(dir);
      const t = await again.openTable('chunks');
      const after = new Map((await t.query().select(['id', 'vector']).toArray()).map((r) => [r.id, Array.from(r.vector as Iterable<number>)]));
      for (const [id, v] of versionsBefore) expect(after.get(id)).toEqual(v);
      expect(await t.countRows('terms IS NULL')).toBe(0);
      t.close();
      again.close();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

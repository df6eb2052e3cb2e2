/**
 * No Qdrant server runs here, so the Qdrant adapter talks to a recording stand-in on 127.0.0.1 and
 * every request it sends is checked against Qdrant's published OpenAPI document (1.19.0). The
 * stand-in answers a non-conforming request with a 400, as Qdrant would, so a bad body also fails
 * the adapter call that sent it.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UpstreamError } from '../src/errors.ts';
import { QDRANT_PAYLOAD_INDEXES, QdrantVectorStore, qdrantRequests } from '../src/vectorstore/qdrant.ts';
import { SPARSE_VECTOR, documentSparseVector, qdrantKeywordRequests, termIndex } from '../src/vectorstore/qdrant-keyword.ts';
import { QdrantMock, type MockExchange } from './support/qdrant-mock.ts';
import { QdrantOpenApi } from './support/qdrant-openapi.ts';
import { DIM, QUERY, at, filter, point, runVectorStoreConformance } from './support/vectorstore-conformance.ts';

const spec = new QdrantOpenApi();
const mock = new QdrantMock((req) => spec.validateRequest(req));
const collectionName = () => `c_${randomUUID().replace(/-/g, '')}`;
const WRITE_OPS = new Set(['upsert_points', 'delete_points', 'set_payload', 'create_field_index', 'create_vector_name', 'update_vectors']);

const opId = (x: MockExchange) => String(spec.findOperation(x.method, x.path)?.op.operationId);
const exchangesFor = (collection: string) => mock.exchanges.filter((x) => x.path.startsWith(`/collections/${collection}`));

async function newStore(collection = collectionName(), apiKey?: string, exactMaxPoints?: number) {
  const store = new QdrantVectorStore({ url: mock.url, collection, apiKey, exactMaxPoints });
  return { store, collection };
}

beforeAll(() => mock.start());
afterAll(() => mock.stop());

describe('the OpenAPI validator is not vacuous', () => {
  const P = '/collections/c/points/query';
  // Built inside each test, not while tests are collected: Stryker counts code run outside a test
  // as "static" and re-runs every test for each mutant in it.
  const goodQuery = () => qdrantRequests.search(QUERY, filter({ principals: ['user:a@x.test', 'group:g'], sourceIds: ['s1'], modifiedAfter: 5 }), 10)!;
  type Query = ReturnType<typeof goodQuery>;

  it('accepts what the adapter builds', () => {
    const good = goodQuery();
    expect(spec.validateRequest({ method: 'POST', path: P, query: {}, body: good })).toEqual([]);
    const pts = [point(), point({ sectionPath: ['a'] })];
    expect(spec.validateRequest({ method: 'PUT', path: '/collections/c/points', query: { wait: 'true' }, body: qdrantRequests.upsert(pts) })).toEqual([]);
    expect(spec.validateRequest({ method: 'POST', path: '/collections/c/points/delete', query: { wait: 'true' }, body: qdrantRequests.deleteDocument('d', 3) })).toEqual([]);
    expect(spec.validateRequest({ method: 'POST', path: '/collections/c/points/payload', query: { wait: 'true' }, body: qdrantRequests.setDocumentAcl('d', ['group:x']) })).toEqual([]);
    expect(spec.validateRequest({ method: 'POST', path: '/collections/c/points/count', query: {}, body: qdrantRequests.count({ sourceId: 's', documentId: 'd' }) })).toEqual([]);
    expect(spec.validateRequest({ method: 'PUT', path: '/collections/c', query: {}, body: qdrantRequests.createCollection(384) })).toEqual([]);
    expect(spec.validateRequest({ method: 'PATCH', path: '/collections/c', query: {}, body: qdrantRequests.updateCollection() })).toEqual([]);
    const f = filter({ principals: ['group:g'], excludedDocumentIds: ['d'] });
    expect(spec.validateRequest({ method: 'POST', path: '/collections/c/points/count', query: {}, body: qdrantRequests.visibleEstimate(f) })).toEqual([]);
    expect(spec.validateRequest({ method: 'POST', path: P, query: {}, body: qdrantRequests.search(QUERY, f, 10, 'exact') })).toEqual([]);
    // The settings themselves are checked, not only their presence.
    const wrong = { ...qdrantRequests.createCollection(384), quantization_config: { scalar: { type: 'int4' } } };
    expect(spec.validateRequest({ method: 'PUT', path: '/collections/c', query: {}, body: wrong })).not.toEqual([]);
    const badParams = { ...good, params: { ...good.params, quantization: { rescore: 'yes' } } };
    expect(spec.validateRequest({ method: 'POST', path: P, query: {}, body: badParams })).not.toEqual([]);
  });

  it.each([
    ['a misspelt top-level key', (good: Query) => ({ ...good, filtr: good.filter })],
    ['limit 0', (good: Query) => ({ ...good, limit: 0 })],
    ['duplicate values in match.any', (good: Query) => ({ ...good, filter: { must: [{ key: 'acl', match: { any: ['a', 'a'] } }] } })],
    ['a match that is not an object', (good: Query) => ({ ...good, filter: { must: [{ key: 'acl', match: 'a' }] } })],
    ['a filter that is a string', (good: Query) => ({ ...good, filter: 'acl = a' })],
    ['a vector of strings', (good: Query) => ({ ...good, query: ['0.1', '0.2'] })],
    ['a misspelt condition key', (good: Query) => ({ ...good, filter: { must: [{ key: 'acl', mtach: { any: ['a'] } }] } })],
  ])('rejects a query body with %s', (_why, body) => {
    expect(spec.validateRequest({ method: 'POST', path: P, query: {}, body: body(goodQuery()) })).not.toEqual([]);
  });

  it('rejects bad upserts, unknown operations and bad query parameters', () => {
    const bad = (method: string, path: string, body: unknown, query: Record<string, string> = {}) =>
      spec.validateRequest({ method, path, query, body });
    expect(bad('PUT', '/collections/c/points', { points: [{ id: 'chunk-1', vector: [1], payload: {} }] })).not.toEqual([]);
    expect(bad('PUT', '/collections/c/points', { point: [] })).not.toEqual([]);
    expect(bad('PUT', '/collections/c', { vectors: { size: 8, distance: 'cosine' } })).not.toEqual([]);
    expect(bad('PUT', '/collections/c/index', { field_name: 'acl', field_schema: 'string' })).not.toEqual([]);
    expect(bad('POST', '/collections/c/points/payload', { filter: { must: [] } })).not.toEqual([]);
    // The pre-1.10 search endpoint is gone from the 1.19 API.
    expect(bad('POST', '/collections/c/points/search', { vector: [1], limit: 1 })).toEqual(['POST /collections/c/points/search: no such operation in the Qdrant API']);
    expect(bad('PUT', '/collections/c/points', { points: [] }, { wait: 'yes' })).not.toEqual([]);
    expect(bad('PUT', '/collections/c/points', { points: [] }, { wiat: 'true' })).not.toEqual([]);
    expect(bad('GET', '/collections/c', { unexpected: true })).not.toEqual([]);
  });

  it('fails the adapter call when the adapter is made to send a wrong body', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    await store.upsert([point()]);
    // The classic mistake: a misspelt key that a lenient server might ignore, dropping the ACL
    // condition. (Top-level keys are typed with `satisfies` in the adapter; nested ones reach the wire.)
    const spy = vi.spyOn(qdrantRequests, 'search').mockImplementation(((vector: number[], f: { principals: string[] }, topK: number) => {
      return { query: vector, filter: { must: [{ key: 'acl', mtach: { any: f.principals } }] }, limit: topK, with_payload: true };
    }) as unknown as typeof qdrantRequests.search);
    try {
      const err = await store.search(QUERY, filter({ principals: ['everyone'] }), 5).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err).toMatchObject({ status: 400, retryable: false });
      const last = exchangesFor(collection).at(-1)!;
      expect(opId(last)).toBe('query_points');
      expect(last.problems.join('\n')).toMatch(/additional properties.*mtach/);
    } finally {
      spy.mockRestore();
    }
    const upsertSpy = vi.spyOn(qdrantRequests, 'upsert').mockReturnValue({ points: [{ id: 'chunk-1' } as never] });
    try {
      await expect(store.upsert([point()])).rejects.toMatchObject({ status: 400 });
      expect(exchangesFor(collection).at(-1)!.problems).not.toEqual([]);
    } finally {
      upsertSpy.mockRestore();
    }
    await store.close();
  });
});

describe('Qdrant adapter against the schema-validating stand-in', () => {
  const seen = new Set<string>();
  afterEach(() => {
    for (const x of mock.exchanges) seen.add(opId(x));
  });

  runVectorStoreConformance('qdrant (OpenAPI-validating stand-in)', async () => {
    const { store, collection } = await newStore();
    return { store, cleanup: async () => { mock.collections.delete(collection); } };
  });

  it('creates the collection with cosine vectors and the payload indexes filters rely on', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    const xs = exchangesFor(collection);
    expect(xs.map(opId)).toEqual(['get_collection', 'create_collection', 'get_collection', ...QDRANT_PAYLOAD_INDEXES.map(() => 'create_field_index'), 'create_vector_name', 'scroll_points']);
    expect(xs[1]!.body).toEqual({
      vectors: { size: DIM, distance: 'Cosine', on_disk: true },
      hnsw_config: { m: 16, ef_construct: 128, full_scan_threshold: 10_000, payload_m: 16 },
      quantization_config: { scalar: { type: 'int8', quantile: 0.99, always_ram: true } },
    });
    expect(xs.slice(3, 3 + QDRANT_PAYLOAD_INDEXES.length).map((x) => x.body)).toEqual(QDRANT_PAYLOAD_INDEXES.map(([field_name, field_schema]) => ({ field_name, field_schema })));
    // The keyword channel: a sparse vector whose IDF Qdrant computes.
    expect(xs.at(-2)!.path).toBe(`/collections/${collection}/vectors/${SPARSE_VECTOR}`);
    expect(xs.at(-2)!.body).toEqual({ sparse: { modifier: 'idf' } });
    expect(Object.fromEntries(QDRANT_PAYLOAD_INDEXES)).toMatchObject({ acl: 'keyword', sourceId: 'keyword', documentId: 'keyword', generation: 'integer' });

    // A second process finds everything in place and changes nothing.
    const before = xs.length;
    const { store: again } = await newStore(collection);
    await again.init(DIM);
    expect(exchangesFor(collection).slice(before).map(opId)).toEqual(['get_collection', 'scroll_points']);
    await expect((await newStore(collection)).store.init(DIM + 1)).rejects.toThrow(/size 8.*size 9/);

    // A missing index is added on its own.
    mock.collections.get(collection)!.indexes.delete('acl');
    const mark = exchangesFor(collection).length;
    await (await newStore(collection)).store.init(DIM);
    expect(exchangesFor(collection).slice(mark).map((x) => x.body ?? null).slice(0, 2)).toEqual([null, { field_name: 'acl', field_schema: 'keyword' }]);

    // A collection made before the index settings existed gets them once (Qdrant re-indexes in the background).
    delete mock.collections.get(collection)!.quantization;
    const mark2 = exchangesFor(collection).length;
    await (await newStore(collection)).store.init(DIM);
    await (await newStore(collection)).store.init(DIM);
    const later = exchangesFor(collection).slice(mark2).filter((x) => opId(x) !== 'scroll_points');
    expect(later.map(opId)).toEqual(['get_collection', 'update_collection', 'get_collection']);
    expect(later[1]!.body).toEqual({
      hnsw_config: { m: 16, ef_construct: 128, full_scan_threshold: 10_000, payload_m: 16 },
      quantization_config: { scalar: { type: 'int8', quantile: 0.99, always_ram: true } },
    });
  });

  it('searches exactly when few points pass the filter, through HNSW with rescored quantized vectors otherwise', async () => {
    const { store, collection } = await newStore(collectionName(), undefined, 5);
    await store.init(DIM);
    await store.upsert([...Array.from({ length: 8 }, () => point({ acl: ['group:big'] })), point({ acl: ['group:small'] })]);
    const mark = exchangesFor(collection).length;
    await store.search(QUERY, filter({ principals: ['group:big'] }), 3);
    await store.search(QUERY, filter({ principals: ['group:small'] }), 3);
    await store.search(QUERY, filter({ principals: ['group:big'] }), 3);
    const xs = exchangesFor(collection).slice(mark);
    // One cheap estimate per filter (then cached), the query with its plan.
    expect(xs.map(opId)).toEqual(['count_points', 'query_points', 'count_points', 'query_points', 'query_points']);
    expect(xs[0]!.body).toEqual({ filter: { must: [{ key: 'acl', match: { any: ['group:big'] } }] }, exact: false });
    const params = (x: MockExchange) => (x.body as { params: unknown }).params;
    const quantization = { ignore: false, rescore: true, oversampling: 2 };
    expect(params(xs[1]!)).toEqual({ hnsw_ef: 128, exact: false, quantization });
    expect(params(xs[3]!)).toEqual({ hnsw_ef: 128, exact: true, quantization });
    expect(params(xs[4]!)).toEqual({ hnsw_ef: 128, exact: false, quantization });
    expect((qdrantRequests.search(QUERY, filter({ principals: ['everyone'] }), 500)!.params).hnsw_ef).toBe(500);
  });

  it('tolerates another process creating the collection first', async () => {
    const { store, collection } = await newStore();
    mock.collections.set(collection, { size: DIM, distance: 'Cosine', points: new Map(), indexes: new Map() });
    mock.failNext(404, {}, 1, (r) => r.method === 'GET' && r.path === `/collections/${collection}`);
    await store.init(DIM);
    expect(exchangesFor(collection).map((x) => `${opId(x)} ${x.status}`).slice(0, 3))
      .toEqual(['get_collection 404', 'create_collection 409', 'get_collection 200']);
    await store.ping();
  });

  it('sends the permission filter inside the query and nothing at all when nothing can match', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    const mark = exchangesFor(collection).length;
    await store.search(QUERY, filter({ principals: ['user:a@x.test', 'group:g', 'user:a@x.test'], sourceIds: ['s1', 's2'], modifiedAfter: 1234 }), 7);
    const [estimate, q] = exchangesFor(collection).slice(mark);
    expect(opId(estimate!)).toBe('count_points');
    expect(opId(q!)).toBe('query_points');
    expect(q!.body).toEqual({
      query: QUERY,
      filter: { must: [
        { key: 'acl', match: { any: ['group:g', 'user:a@x.test'] } },
        { key: 'sourceId', match: { any: ['s1', 's2'] } },
        { key: 'lastModified', range: { gte: 1234 } },
      ] },
      params: { hnsw_ef: 128, exact: true, quantization: { ignore: false, rescore: true, oversampling: 2 } },
      limit: 7, with_payload: true, with_vector: false,
    });
    await store.search(QUERY, filter({ principals: ['everyone'], excludedSourceIds: ['off'], excludedDocumentIds: ['q1', 'q2'] }), 3);
    expect(exchangesFor(collection).at(-1)!.body).toMatchObject({ filter: {
      must: [{ key: 'acl', match: { any: ['everyone'] } }],
      must_not: [{ key: 'sourceId', match: { any: ['off'] } }, { key: 'documentId', match: { any: ['q1', 'q2'] } }],
    } });
    const quiet = exchangesFor(collection).length;
    expect(await store.search(QUERY, filter({ principals: [] }), 10)).toEqual([]);
    expect(await store.search(QUERY, filter({ principals: ['everyone'], sourceIds: [] }), 10)).toEqual([]);
    expect(await store.search(QUERY, filter({ principals: ['everyone'], modifiedAfter: Infinity }), 10)).toEqual([]);
    expect(await store.search(QUERY, filter({ principals: ['everyone'] }), 0)).toEqual([]);
    expect(exchangesFor(collection).length).toBe(quiet);
  });

  it('waits on every write, changes ACLs by payload only and deletes by filter', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    const mark = exchangesFor(collection).length;
    await store.upsert(Array.from({ length: 300 }, (_, i) => point({ documentId: 'big', chunkIndex: i, vector: at(i / 300) })));
    await store.setDocumentAcl('big', ['group:new']);
    await store.deleteDocument('big', { keepGeneration: 4 });
    await store.deleteSource('src-a');
    const xs = exchangesFor(collection).slice(mark);
    expect(xs.map(opId)).toEqual(['upsert_points', 'upsert_points', 'upsert_points', 'set_payload', 'delete_points', 'delete_points']);
    expect(xs.map((x) => (x.body as { points?: unknown[] }).points?.length ?? 0).slice(0, 3)).toEqual([128, 128, 44]);
    for (const x of xs) expect(x.query).toEqual({ wait: 'true' });
    expect(xs[3]!.body).toEqual({ payload: { acl: ['group:new'] }, filter: { must: [{ key: 'documentId', match: { value: 'big' } }] } });
    expect(xs[4]!.body).toEqual({ filter: {
      must: [{ key: 'documentId', match: { value: 'big' } }],
      must_not: [{ key: 'generation', match: { value: 4 } }],
    } });
    expect(xs[5]!.body).toEqual({ filter: { must: [{ key: 'sourceId', match: { value: 'src-a' } }] } });
    expect(await store.count()).toBe(0);
  });

  it('writes BM25 term weights as a sparse vector beside the dense one and queries it with the same filter', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    const p = point({ text: 'Outage INC-4711: restart the gateway', sectionPath: ['Runbook'] });
    const empty = point({ text: 'the of and' });
    const mark = exchangesFor(collection).length;
    await store.upsert([p, empty]);
    const [up] = exchangesFor(collection).slice(mark);
    const [withTerms, withoutTerms] = (up!.body as { points: { vector: unknown }[] }).points;
    expect(withTerms!.vector).toEqual({ '': p.vector, [SPARSE_VECTOR]: documentSparseVector(p) });
    expect((withTerms!.vector as Record<string, { indices: number[] }>)[SPARSE_VECTOR]!.indices).toContain(termIndex('inc-4711'));
    expect(withoutTerms!.vector).toEqual(empty.vector);

    await store.keywordSearch('INC-4711', filter({ principals: ['group:g', 'everyone'], sourceIds: ['src-a'], excludedDocumentIds: ['q'] }), 7);
    const q = exchangesFor(collection).at(-1)!;
    expect(opId(q)).toBe('query_points');
    expect(q.body).toEqual({
      query: qdrantKeywordRequests.search('INC-4711', filter({ principals: ['everyone'] }), 1)!.query,
      using: SPARSE_VECTOR,
      filter: {
        must: [{ key: 'acl', match: { any: ['everyone', 'group:g'] } }, { key: 'sourceId', match: { any: ['src-a'] } }],
        must_not: [{ key: 'documentId', match: { any: ['q'] } }],
      },
      limit: 7, with_payload: true, with_vector: false,
    });
    const quiet = exchangesFor(collection).length;
    expect(await store.keywordSearch('INC-4711', filter({ principals: [] }), 10)).toEqual([]);
    expect(await store.keywordSearch('the of', filter({ principals: ['everyone'] }), 10)).toEqual([]);
    expect(await store.keywordSearch('INC-4711', filter({ principals: ['everyone'] }), 0)).toEqual([]);
    expect(exchangesFor(collection).length).toBe(quiet);
  });

  it('gives a collection written before the keyword channel its sparse vector from stored text, re-sending no dense vector', async () => {
    const collection = collectionName();
    // The shape an earlier version wrote: one unnamed dense vector, no sparse vectors.
    const legacy = Array.from({ length: 300 }, (_, i) => point({ documentId: `old-${i}`, text: i === 7 ? 'Escalate INC-4711 to the on-call' : `routine note ${i}` }));
    mock.collections.set(collection, { size: DIM, distance: 'Cosine', indexes: new Map(QDRANT_PAYLOAD_INDEXES.map(([f, t]) => [f, t])), points: new Map(legacy.map((p) => [p.id, {
      id: p.id, vector: p.vector, payload: { documentId: p.documentId, sourceId: p.sourceId, generation: p.generation, chunkIndex: 0, sectionPath: [], text: p.text, lastModified: p.lastModified, acl: p.acl },
    }])) });
    const { store } = await newStore(collection);
    await store.init(DIM);
    const xs = exchangesFor(collection);
    expect(xs.map(opId)).not.toContain('upsert_points');
    expect(xs.filter((x) => opId(x) === 'update_vectors').flatMap((x) => (x.body as { points: { vector: object }[] }).points.map((p) => Object.keys(p.vector)))).toEqual(legacy.map(() => [SPARSE_VECTOR]));
    const hits = await store.keywordSearch('INC-4711', filter({ principals: ['everyone'] }), 5);
    expect(hits.map((h) => h.point.documentId)).toEqual(['old-7']);
    // Nothing left to backfill at the next start.
    const mark = exchangesFor(collection).length;
    await (await newStore(collection)).store.init(DIM);
    expect(exchangesFor(collection).slice(mark).map(opId)).toEqual(['get_collection', 'scroll_points']);
  });

  it('sends the API key header when one is configured', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const { store, collection } = await newStore(collectionName(), 'secret-key');
      await store.init(DIM);
      expect(exchangesFor(collection).every((x) => x.headers['api-key'] === 'secret-key')).toBe(true);
    } finally {
      warn.mockRestore();
    }
  });

  it('maps failures to UpstreamError with retryability and Retry-After', async () => {
    const { store, collection } = await newStore();
    await store.init(DIM);
    const onThis = (r: { path: string }) => r.path.startsWith(`/collections/${collection}`);

    mock.failNext(503, { 'retry-after': '12' }, 1, onThis);
    await expect(store.search(QUERY, filter({ principals: ['everyone'] }), 3)).rejects.toMatchObject({ name: 'UpstreamError', retryable: true, status: 503, retryAfterSeconds: 12 });

    mock.failNext(429, { 'retry-after': '7' }, 1, onThis);
    await expect(store.upsert([point()])).rejects.toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 7 });

    mock.failNext(429, {}, 1, onThis);
    await expect(store.count()).rejects.toMatchObject({ retryable: true, status: 429 });

    mock.failNext(500, {}, 1, onThis);
    await expect(store.deleteSource('s')).rejects.toMatchObject({ retryable: true, status: 500 });

    mock.failNext(400, {}, 1, onThis);
    const bad = await store.setDocumentAcl('d', ['x']).catch((e: unknown) => e);
    expect(bad).toMatchObject({ retryable: false, status: 400 });
    expect((bad as Error).message).toMatch(/HTTP 400: injected HTTP 400/);

    mock.failNext(403, {}, 1, onThis);
    await expect(store.deleteDocument('d')).rejects.toMatchObject({ retryable: false, status: 403 });

    // Nothing listens on a port we just closed.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = new QdrantVectorStore({ url: `http://127.0.0.1:${port}`, collection: 'x' });
    await expect(down.init(DIM)).rejects.toMatchObject({ name: 'UpstreamError', retryable: true });
    await expect(down.ping()).rejects.toMatchObject({ retryable: true });

    await store.ping();
    mock.collections.delete(collection);
    await expect(store.ping()).rejects.toMatchObject({ retryable: false });
  });

  it('sent only requests that conform to the Qdrant 1.19 OpenAPI document, and got conforming answers', () => {
    for (const x of mock.exchanges) seen.add(opId(x));
    expect(mock.exchanges.length).toBeGreaterThan(200);
    const injected = (x: MockExchange) => (x.response as { status?: { error?: string } }).status?.error?.startsWith('injected');
    // Requests the vacuity tests forced to be wrong are the only ones allowed to fail validation.
    const forced = mock.exchanges.filter((x) => x.problems.length > 0);
    expect(forced).toHaveLength(2);
    for (const x of mock.exchanges) {
      if (forced.includes(x)) continue;
      expect(spec.validateRequest(x), `${x.method} ${x.path}`).toEqual([]);
      if (!injected(x)) expect(spec.validateResponse(x.method, x.path, x.status, x.response), `${x.method} ${x.path} → ${x.status}`).toEqual([]);
    }
    expect([...seen].sort()).toEqual([
      'collection_exists', 'count_points', 'create_collection', 'create_field_index', 'create_vector_name', 'delete_points',
      'get_collection', 'query_points', 'scroll_points', 'set_payload', 'update_collection', 'update_vectors', 'upsert_points',
    ]);
    for (const x of mock.exchanges) {
      if (WRITE_OPS.has(opId(x))) expect(x.query.wait, `${x.method} ${x.path}`).toBe('true');
    }
  });
});

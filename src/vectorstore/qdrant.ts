import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import { UpstreamError, parseRetryAfter } from '../errors.ts';
import type { PermissionFilter, Principal } from '../access/index.ts';
import type { ChunkPoint, VectorHit, VectorStore } from './interface.ts';
import { assertStrings, assertVector, dedupeById, limitOf, preparePoint } from './points.ts';
import { qdrantPermissionFilter, type FieldCondition, type QdrantFilter } from './qdrant-filter.ts';
import { choosePlan, VisibleRowsCache, type SearchPlan } from './plan.ts';
import { documentSparseVector, qdrantKeywordRequests, SPARSE_VECTOR } from './qdrant-keyword.ts';

export { qdrantPermissionFilter, type QdrantFilter } from './qdrant-filter.ts';

/** Payload indexes that every filter we send relies on (Qdrant filters unindexed fields slowly or, in strict mode, not at all). */
export const QDRANT_PAYLOAD_INDEXES = [
  ['acl', 'keyword'],
  ['sourceId', 'keyword'],
  ['documentId', 'keyword'],
  // Float, not integer: the range filter must see every stored number, even a non-integral one.
  ['lastModified', 'float'],
  ['generation', 'integer'],
] as const;

const UPSERT_BATCH = 128;

/**
 * Index settings of the collection, the counterpart of the LanceDB store's ANN index: an HNSW
 * graph (with extra links per indexed payload value, so filtered searches stay connected), int8
 * scalar quantization kept in RAM with the full vectors on disk, and rescoring of an oversampled
 * candidate list on the full vectors.
 */
export const QDRANT_INDEX = {
  hnsw: { m: 16, ef_construct: 128, full_scan_threshold: 10_000, payload_m: 16 },
  quantization: { scalar: { type: 'int8' as const, quantile: 0.99, always_ram: true } },
  /** Search-time HNSW candidate list and rescoring. */
  hnswEf: 128,
  oversampling: 2,
  /** A filter that lets through at most this many points is searched exactly (payload index, then brute force). */
  exactMaxPoints: 20_000,
};

/** The dense vector as the default (unnamed, "") vector, with the keyword channel's sparse vector beside it when the chunk has terms. */
function withKeywords(p: ChunkPoint): number[] | Record<string, Schemas['Vector']> {
  const keywords = documentSparseVector(p);
  return keywords ? { '': p.vector, [SPARSE_VECTOR]: keywords } : p.vector;
}

const byDocument = (documentId: string): FieldCondition => ({ key: 'documentId', match: { value: documentId } });

/**
 * Every request body the adapter sends, built by pure functions so tests can validate them
 * against Qdrant's OpenAPI schema. The adapter looks these up at call time (so a test can
 * substitute one to prove the validation is not vacuous). `satisfies` matters here: the client
 * copies only the top-level keys it knows, so a misspelt `filtr` would vanish silently and widen
 * a search; the compiler catches it instead.
 */
export const qdrantRequests = {
  createCollection: (dimension: number) => ({
    vectors: { size: dimension, distance: 'Cosine' as const, on_disk: true },
    hnsw_config: { ...QDRANT_INDEX.hnsw },
    quantization_config: structuredClone(QDRANT_INDEX.quantization),
  }) satisfies Schemas['CreateCollection'],

  /** For a collection made before the index settings existed: Qdrant re-indexes it in the background. */
  updateCollection: () => ({
    hnsw_config: { ...QDRANT_INDEX.hnsw },
    quantization_config: structuredClone(QDRANT_INDEX.quantization),
  }) satisfies Schemas['UpdateCollection'],

  createIndex: (field: string, schema: 'keyword' | 'integer' | 'float') => ({ field_name: field, field_schema: schema }) satisfies Schemas['CreateFieldIndex'],

  upsert: (points: ChunkPoint[]) => ({
    points: points.map((p) => ({
      id: p.id,
      vector: withKeywords(p),
      payload: {
        documentId: p.documentId,
        sourceId: p.sourceId,
        generation: p.generation,
        chunkIndex: p.chunkIndex,
        sectionPath: p.sectionPath,
        text: p.text,
        ...(p.context !== undefined ? { context: p.context } : {}),
        lastModified: p.lastModified,
        acl: p.acl,
      },
    })),
  }) satisfies Schemas['PointsList'],

  deleteDocument: (documentId: string, keepGeneration?: number) => {
    const filter: QdrantFilter = { must: [byDocument(documentId)] };
    if (keepGeneration !== undefined) filter.must_not = [{ key: 'generation', match: { value: keepGeneration } }];
    return { filter } satisfies Schemas['FilterSelector'];
  },

  deleteSource: (sourceId: string) => ({ filter: { must: [{ key: 'sourceId', match: { value: sourceId } }] } }) satisfies Schemas['FilterSelector'],

  setDocumentAcl: (documentId: string, acl: Principal[]) => ({ payload: { acl }, filter: { must: [byDocument(documentId)] } }) satisfies Schemas['SetPayload'],

  /** `null` when nothing can match (the permission filter grants nothing, topK <= 0): then nothing is sent. */
  search: (vector: number[], filter: PermissionFilter, topK: number, plan: SearchPlan = 'ann') => {
    const limit = limitOf(topK);
    const f = qdrantPermissionFilter(filter);
    if (!f || limit === 0) return null;
    const params = {
      hnsw_ef: Math.max(QDRANT_INDEX.hnswEf, limit),
      exact: plan === 'exact',
      quantization: { ignore: false, rescore: true, oversampling: QDRANT_INDEX.oversampling },
    };
    return { query: vector, filter: f, params, limit, with_payload: true, with_vector: false } satisfies Schemas['QueryRequest'];
  },

  /** How many points a filter lets through, estimated from the payload indexes (cheap, not exact). `null` as for search. */
  visibleEstimate: (filter: PermissionFilter) => {
    const f = qdrantPermissionFilter(filter);
    return f ? ({ filter: f, exact: false } satisfies Schemas['CountRequest']) : null;
  },

  documentChunks: (documentId: string, generation: number, offset?: string | number) => ({
    filter: { must: [byDocument(documentId), { key: 'generation', match: { value: generation } }] },
    limit: 256,
    with_payload: true,
    with_vector: false,
    ...(offset !== undefined ? { offset } : {}),
  }) satisfies Schemas['ScrollRequest'],

  count: (filter?: { sourceId?: string; documentId?: string }) => {
    const must: FieldCondition[] = [];
    if (filter?.sourceId !== undefined) must.push({ key: 'sourceId', match: { value: filter.sourceId } });
    if (filter?.documentId !== undefined) must.push(byDocument(filter.documentId));
    return (must.length ? { filter: { must }, exact: true } : { exact: true }) satisfies Schemas['CountRequest'];
  },
};

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  }
  return undefined;
}

function qdrantDetail(data: unknown): string | undefined {
  const error = (data as { status?: { error?: unknown } } | undefined)?.status?.error;
  if (typeof error === 'string') return error;
  if (typeof data === 'string' && data) return data.slice(0, 300);
  return undefined;
}

/** Maps whatever the client threw into an UpstreamError the job runner can act on. */
export function toUpstreamError(err: unknown, op: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { name?: string; status?: unknown; headers?: unknown; data?: unknown; message?: string; retry_after?: unknown };
  if (typeof e?.status === 'number') {
    const status = e.status;
    const headers = e.headers as { get?: (name: string) => string | null } | undefined;
    const retryAfter = typeof headers?.get === 'function' ? parseRetryAfter(headers.get('retry-after')) : undefined;
    const detail = qdrantDetail(e.data) ?? e.message ?? '';
    return new UpstreamError(`Qdrant ${op} failed with HTTP ${status}${detail ? `: ${detail}` : ''}`, {
      retryable: RETRYABLE_STATUS.has(status), status, retryAfterSeconds: retryAfter, cause: err,
    });
  }
  if (e?.name === 'QdrantClientResourceExhaustedError') {
    // The client consumed the 429 response itself and kept only its reading of Retry-After, which
    // (js-client-rest 1.18) is the header's first character: "30" arrives as 3. A lower bound, then.
    const secs = typeof e.retry_after === 'number' && Number.isFinite(e.retry_after) ? e.retry_after : undefined;
    return new UpstreamError(`Qdrant ${op} was rate limited`, { retryable: true, status: 429, retryAfterSeconds: secs, cause: err });
  }
  if (typeof e?.message === 'string' && e.message.startsWith('Invalid retryAfter value')) {
    // Thrown by the client for a 429 whose Retry-After it could not read (an HTTP date).
    return new UpstreamError(`Qdrant ${op} was rate limited`, { retryable: true, status: 429, cause: err });
  }
  if (e?.name === 'QdrantClientTimeoutError') {
    return new UpstreamError(`Qdrant ${op} timed out`, { retryable: true, cause: err });
  }
  const code = networkCode(err);
  if (code || (err instanceof TypeError && /fetch failed/i.test(err.message))) {
    return new UpstreamError(`Qdrant ${op} could not reach the server${code ? ` (${code})` : ''}`, { retryable: true, cause: err });
  }
  return new UpstreamError(`Qdrant ${op} failed: ${e?.message ?? String(err)}`, { retryable: false, cause: err });
}

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function hitFromScoredPoint(p: { id: string | number; score: number; payload?: Record<string, unknown> | null }): VectorHit {
  const pl = p.payload ?? {};
  return {
    point: {
      id: String(p.id),
      documentId: str(pl.documentId),
      sourceId: str(pl.sourceId),
      generation: num(pl.generation),
      chunkIndex: num(pl.chunkIndex),
      sectionPath: strings(pl.sectionPath),
      text: str(pl.text),
      ...(typeof pl.context === 'string' ? { context: pl.context } : {}),
      lastModified: num(pl.lastModified),
      acl: strings(pl.acl),
    },
    score: p.score,
  };
}

export interface QdrantOptions {
  url: string;
  apiKey?: string;
  collection: string;
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /** Filters letting through at most this many points are searched exactly (default QDRANT_INDEX.exactMaxPoints). */
  exactMaxPoints?: number;
}

/** Production vector store: one Qdrant collection, cosine distance, ACLs as an indexed keyword array. */
export class QdrantVectorStore implements VectorStore {
  readonly kind = 'qdrant';
  readonly collection: string;
  private readonly client: QdrantClient;
  private dimension: number | undefined;
  private readonly visiblePoints = new VisibleRowsCache({ ttlMs: 30_000 });
  private readonly exactMaxPoints: number;

  constructor(opts: QdrantOptions) {
    this.collection = opts.collection;
    this.exactMaxPoints = opts.exactMaxPoints ?? QDRANT_INDEX.exactMaxPoints;
    this.client = new QdrantClient({
      url: opts.url,
      apiKey: opts.apiKey,
      timeout: opts.timeoutMs ?? 60_000,
      // The check fires an unawaited request and logs to the console; readiness is ping()'s job.
      checkCompatibility: false,
    });
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toUpstreamError(err, op);
    }
  }

  private async collectionInfo(): Promise<{ size?: number; distance?: string; indexed: Set<string>; sparse: Set<string>; quantized: boolean } | null> {
    try {
      const info = await this.client.getCollection(this.collection);
      const vectors = info.config?.params?.vectors as { size?: number; distance?: string } | Record<string, unknown> | undefined;
      const single = vectors && typeof (vectors as { size?: unknown }).size === 'number' ? (vectors as { size: number; distance?: string }) : undefined;
      return {
        size: single?.size, distance: single?.distance, indexed: new Set(Object.keys(info.payload_schema ?? {})),
        sparse: new Set(Object.keys(info.config?.params?.sparse_vectors ?? {})), quantized: !!info.config?.quantization_config,
      };
    } catch (err) {
      if ((err as { status?: unknown }).status === 404) return null;
      throw toUpstreamError(err, 'get collection');
    }
  }

  async init(dimension: number): Promise<void> {
    if (!Number.isSafeInteger(dimension) || dimension <= 0) throw new RangeError(`Invalid vector dimension ${dimension}`);
    let info = await this.collectionInfo();
    if (!info) {
      try {
        await this.client.createCollection(this.collection, qdrantRequests.createCollection(dimension));
      } catch (err) {
        // Another process created it between our check and our create: fine, it is checked below.
        if ((err as { status?: unknown }).status !== 409) throw toUpstreamError(err, 'create collection');
      }
      info = (await this.collectionInfo()) ?? { size: dimension, distance: 'Cosine', indexed: new Set(), sparse: new Set(), quantized: true };
    }
    if (info.size !== dimension || info.distance !== 'Cosine') {
      throw new Error(`Qdrant collection "${this.collection}" holds ${info.distance ?? 'unnamed/multiple'} vectors of size ${info.size ?? 'unknown'}, ` +
        `but this service needs Cosine vectors of size ${dimension}; set QDRANT_COLLECTION to another name or re-create it`);
    }
    if (!info.quantized) {
      await this.call('update collection', () => this.client.updateCollection(this.collection, qdrantRequests.updateCollection()));
    }
    for (const [field, schema] of QDRANT_PAYLOAD_INDEXES) {
      if (info.indexed.has(field)) continue;
      const body = qdrantRequests.createIndex(field, schema);
      await this.call('create index', () => this.client.createPayloadIndex(this.collection, { ...body, wait: true }));
    }
    await this.addKeywordChannel(info.sparse.has(SPARSE_VECTOR));
    this.dimension = dimension;
  }

  /**
   * Gives a collection the keyword channel's sparse vector (with Qdrant's IDF modifier) and fills
   * it for points written before it existed, from their stored text: no dense vector is re-sent.
   * Resumable: points still without it (say, after a crash half-way) are found by `has_vector` at
   * every start.
   */
  private async addKeywordChannel(exists: boolean): Promise<void> {
    if (!exists) {
      try {
        await this.client.createVectorName(this.collection, SPARSE_VECTOR, qdrantKeywordRequests.createSparseVector(), { wait: true });
      } catch (err) {
        // Another process added it first.
        if ((err as { status?: unknown }).status !== 409) throw toUpstreamError(err, 'create keyword vector');
      }
    }
    let offset: string | number | null = null;
    do {
      const page = await this.call('scroll', () => this.client.scroll(this.collection, qdrantKeywordRequests.backfillPage(offset, UPSERT_BATCH)));
      const body = qdrantKeywordRequests.backfillVectors(page.points.map((p) => ({
        id: p.id, sectionPath: strings(p.payload?.sectionPath), text: str(p.payload?.text),
      })));
      if (body.points.length) await this.call('backfill keywords', () => this.client.updateVectors(this.collection, { ...body, wait: true }));
      offset = (page.next_page_offset ?? null) as string | number | null;
    } while (offset !== null);
  }

  async upsert(points: ChunkPoint[]): Promise<void> {
    if (points.length === 0) return;
    const prepared = dedupeById(points.map((p) => preparePoint(p, this.dimension)));
    for (let i = 0; i < prepared.length; i += UPSERT_BATCH) {
      const body = qdrantRequests.upsert(prepared.slice(i, i + UPSERT_BATCH));
      await this.call('upsert', () => this.client.upsert(this.collection, { ...body, wait: true }));
    }
  }

  async deleteDocument(documentId: string, opts?: { keepGeneration?: number }): Promise<void> {
    const keep = opts?.keepGeneration;
    if (keep !== undefined && !Number.isSafeInteger(keep)) throw new TypeError('keepGeneration must be an integer');
    const body = qdrantRequests.deleteDocument(documentId, keep);
    await this.call('delete document', () => this.client.delete(this.collection, { ...body, wait: true }));
  }

  async deleteSource(sourceId: string): Promise<void> {
    const body = qdrantRequests.deleteSource(sourceId);
    await this.call('delete source', () => this.client.delete(this.collection, { ...body, wait: true }));
  }

  async setDocumentAcl(documentId: string, acl: Principal[]): Promise<void> {
    assertStrings(acl, 'acl');
    const body = qdrantRequests.setDocumentAcl(documentId, [...acl]);
    await this.call('set ACL', () => this.client.setPayload(this.collection, { ...body, wait: true }));
  }

  async search(vector: number[], filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    assertVector(vector, this.dimension, 'query vector');
    if (!qdrantRequests.search(vector, filter, topK)) return [];
    const body = qdrantRequests.search(vector, filter, topK, await this.planFor(filter))!;
    const result = await this.call('search', () => this.client.query(this.collection, body));
    return result.points.map((p) => hitFromScoredPoint(p as { id: string | number; score: number; payload?: Record<string, unknown> | null }));
  }

  /**
   * Exact (payload index, then brute force over what it lets through) when the filter is very
   * selective: HNSW with a filter that few points pass can miss visible points. See plan.ts.
   */
  private async planFor(filter: PermissionFilter): Promise<SearchPlan> {
    const body = qdrantRequests.visibleEstimate(filter);
    if (!body) return 'exact';
    const visible = await this.visiblePoints.get(JSON.stringify(body.filter), async () =>
      (await this.call('count', () => this.client.count(this.collection, body))).count);
    return choosePlan(visible, this.exactMaxPoints);
  }

  async keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    if (typeof query !== 'string') throw new TypeError('query must be a string');
    if (this.dimension === undefined) throw new Error('Vector store not initialised: call init(dimension) first');
    const body = qdrantKeywordRequests.search(query, filter, topK);
    if (!body) return [];
    const result = await this.call('keyword search', () => this.client.query(this.collection, body));
    return result.points.map((p) => hitFromScoredPoint(p as { id: string | number; score: number; payload?: Record<string, unknown> | null }));
  }

  async documentChunks(documentId: string, generation: number): Promise<Omit<ChunkPoint, 'vector'>[]> {
    if (!Number.isSafeInteger(generation)) throw new TypeError('generation must be an integer');
    const out: Omit<ChunkPoint, 'vector'>[] = [];
    let offset: string | number | undefined;
    for (;;) {
      const body = qdrantRequests.documentChunks(documentId, generation, offset);
      const page = await this.call('scroll', () => this.client.scroll(this.collection, body));
      for (const p of page.points) out.push(hitFromScoredPoint({ ...(p as { id: string | number; payload?: Record<string, unknown> | null }), score: 0 }).point);
      const next = page.next_page_offset;
      if (next === null || next === undefined || typeof next === 'object') break;
      offset = next;
    }
    return out.sort((a, b) => a.chunkIndex - b.chunkIndex);
  }

  async count(filter?: { sourceId?: string; documentId?: string }): Promise<number> {
    const result = await this.call('count', () => this.client.count(this.collection, qdrantRequests.count(filter)));
    return result.count;
  }

  async ping(): Promise<void> {
    const exists = await this.call('ping', () => this.client.collectionExists(this.collection));
    if (!exists.exists) throw new UpstreamError(`Qdrant collection "${this.collection}" does not exist`, { retryable: false });
  }

  async close(): Promise<void> {}
}

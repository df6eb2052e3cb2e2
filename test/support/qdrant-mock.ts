/**
 * A small stand-in for a Qdrant server on 127.0.0.1: enough of the REST API for the adapter
 * (collections, payload indexes, upsert, delete, set_payload, query, count) with Qdrant's filter
 * semantics, recording every request. An optional `check` hook can reject requests with a 400,
 * as a real server rejects a malformed body.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedRequest } from './qdrant-openapi.ts';

type Payload = Record<string, unknown>;
interface Sparse { indices: number[]; values: number[] }
interface StoredPoint { id: string; vector: number[]; sparse?: Record<string, Sparse>; payload: Payload }
interface Collection {
  size: number; distance: string; points: Map<string, StoredPoint>; indexes: Map<string, string>; sparse?: Map<string, { modifier?: string }>;
  quantization?: unknown; hnsw?: Record<string, unknown>;
}

export interface MockExchange extends RecordedRequest {
  headers: http.IncomingHttpHeaders;
  status: number;
  response: unknown;
  problems: string[];
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

const asArray = <T>(v: T | T[] | null | undefined): T[] => (v == null ? [] : Array.isArray(v) ? v : [v]);
const values = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

function matchCondition(cond: Record<string, unknown>, p: StoredPoint): boolean {
  if ('must' in cond || 'should' in cond || 'must_not' in cond) return matchFilter(cond, p);
  if (typeof cond.has_vector === 'string') return cond.has_vector === '' ? true : !!p.sparse?.[cond.has_vector];
  if (typeof cond.key !== 'string') throw new HttpError(400, `mock: unsupported condition ${JSON.stringify(cond)}`);
  const vals = values(p.payload[cond.key]);
  const match = cond.match as Record<string, unknown> | undefined;
  if (match) {
    if ('value' in match) return vals.some((v) => v === match.value);
    if ('any' in match) return vals.some((v) => (match.any as unknown[]).includes(v));
    if ('except' in match) return vals.length > 0 && vals.every((v) => !(match.except as unknown[]).includes(v));
    throw new HttpError(400, `mock: unsupported match ${JSON.stringify(match)}`);
  }
  const range = cond.range as Record<string, number | null | undefined> | undefined;
  if (range) {
    return vals.some((v) => typeof v === 'number'
      && (range.gte == null || v >= range.gte) && (range.gt == null || v > range.gt)
      && (range.lte == null || v <= range.lte) && (range.lt == null || v < range.lt));
  }
  throw new HttpError(400, `mock: unsupported condition ${JSON.stringify(cond)}`);
}

function matchFilter(filter: Record<string, unknown> | null | undefined, p: StoredPoint): boolean {
  if (!filter) return true;
  const must = asArray(filter.must as Record<string, unknown>[]);
  const mustNot = asArray(filter.must_not as Record<string, unknown>[]);
  const should = asArray(filter.should as Record<string, unknown>[]);
  return must.every((c) => matchCondition(c, p))
    && !mustNot.some((c) => matchCondition(c, p))
    && (should.length === 0 || should.some((c) => matchCondition(c, p)));
}

const normalize = (v: number[]) => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return n === 0 ? v : v.map((x) => x / n);
};

function collectionInfo(c: Collection) {
  return {
    status: 'green',
    optimizer_status: 'ok',
    indexed_vectors_count: 0,
    points_count: c.points.size,
    segments_count: 1,
    config: {
      params: { vectors: { size: c.size, distance: c.distance },
        ...(c.sparse?.size ? { sparse_vectors: Object.fromEntries([...c.sparse].map(([n, cfg]) => [n, cfg.modifier ? { modifier: cfg.modifier } : {}])) } : {}),
        shard_number: 1, replication_factor: 1, write_consistency_factor: 1, on_disk_payload: true },
      hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false, ...c.hnsw },
      ...(c.quantization ? { quantization_config: c.quantization } : {}),
      optimizer_config: { deleted_threshold: 0.2, vacuum_min_vector_number: 1000, default_segment_number: 0, indexing_threshold: 20000, flush_interval_sec: 5 },
      wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
    },
    payload_schema: Object.fromEntries([...c.indexes].map(([field, type]) => [field, {
      data_type: type, params: { type }, points: [...c.points.values()].filter((p) => p.payload[field] !== undefined).length,
    }])),
  };
}

export class QdrantMock {
  readonly exchanges: MockExchange[] = [];
  readonly collections = new Map<string, Collection>();
  private server: http.Server | undefined;
  private faults: { status: number; headers: Record<string, string>; remaining: number; when?: (req: RecordedRequest) => boolean }[] = [];
  private opCounter = 0;

  /** Called for every request before it is served; any returned problem turns the answer into a 400. */
  constructor(private readonly check?: (req: RecordedRequest) => string[]) {}

  get url(): string {
    const addr = this.server?.address() as AddressInfo | null;
    if (!addr) throw new Error('mock not started');
    return `http://127.0.0.1:${addr.port}`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** The next `times` requests (that satisfy `when`) are answered with this status and headers instead of being served. */
  failNext(status: number, headers: Record<string, string> = {}, times = 1, when?: (req: RecordedRequest) => boolean): void {
    this.faults.push({ status, headers, remaining: times, when });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const started = process.hrtime.bigint();
    const exchange: MockExchange = {
      method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams),
      headers: req.headers, body: undefined, status: 0, response: undefined, problems: [],
    };
    this.exchanges.push(exchange);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      exchange.status = status;
      exchange.response = body;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const time = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      if (raw.length) {
        try { exchange.body = JSON.parse(raw); } catch { throw new HttpError(400, 'Json deserialize error: invalid JSON'); }
      }
      const fault = this.faults.find((f) => !f.when || f.when(exchange));
      if (fault) {
        if (--fault.remaining <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
        return send(fault.status, { status: { error: `injected HTTP ${fault.status}` }, time: time() }, fault.headers);
      }
      exchange.problems = this.check?.(exchange) ?? [];
      if (exchange.problems.length) throw new HttpError(400, `Format error in JSON body: ${exchange.problems.join('; ')}`);
      const result = this.route(exchange.method, url.pathname, (exchange.body ?? {}) as Record<string, unknown>);
      send(200, { result, status: 'ok', time: time() });
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      send(status, { status: { error: err instanceof Error ? err.message : String(err) }, time: time() });
    }
  }

  private coll(name: string): Collection {
    const c = this.collections.get(name);
    if (!c) throw new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return c;
  }

  private updated() {
    return { operation_id: this.opCounter++, status: 'completed' };
  }

  private route(method: string, path: string, body: Record<string, unknown>): unknown {
    const m = /^\/collections\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) throw new HttpError(404, `mock: no route ${method} ${path}`);
    const name = decodeURIComponent(m[1]!);
    const rest = m[2] ?? '';
    const key = `${method} ${rest}`;
    switch (key) {
      case 'GET ': return collectionInfo(this.coll(name));
      case 'GET /exists': return { exists: this.collections.has(name) };
      case 'PUT ': {
        if (this.collections.has(name)) throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const vectors = body.vectors as { size: number; distance: string };
        this.collections.set(name, {
          size: vectors.size, distance: vectors.distance, points: new Map(), indexes: new Map(),
          quantization: body.quantization_config ?? undefined, hnsw: (body.hnsw_config as Record<string, unknown> | undefined) ?? undefined,
        });
        return true;
      }
      case 'PATCH ': {
        const c = this.coll(name);
        if (body.quantization_config !== undefined) c.quantization = body.quantization_config;
        if (body.hnsw_config) c.hnsw = { ...c.hnsw, ...(body.hnsw_config as Record<string, unknown>) };
        return true;
      }
      case 'DELETE ': return this.collections.delete(name);
      case 'PUT /index': {
        const c = this.coll(name);
        const schema = body.field_schema;
        c.indexes.set(String(body.field_name), typeof schema === 'string' ? schema : String((schema as { type?: unknown })?.type));
        return this.updated();
      }
      case 'PUT /points': {
        const c = this.coll(name);
        for (const p of body.points as { id: string | number; vector: number[] | Record<string, unknown>; payload?: Payload }[]) {
          const { dense, sparse } = this.splitVectors(c, p.vector);
          if (!dense) throw new HttpError(400, 'Wrong input: the default vector is missing');
          if (dense.length !== c.size) throw new HttpError(400, `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${dense.length}`);
          const id = String(p.id).toLowerCase();
          c.points.set(id, { id, vector: c.distance === 'Cosine' ? normalize(dense) : dense, sparse, payload: structuredClone(p.payload ?? {}) });
        }
        return this.updated();
      }
      case 'PUT /points/vectors': {
        const c = this.coll(name);
        for (const p of body.points as { id: string | number; vector: Record<string, unknown> }[]) {
          const stored = c.points.get(String(p.id).toLowerCase());
          if (!stored) throw new HttpError(404, `Not found: No point with id ${p.id} found`);
          const { dense, sparse } = this.splitVectors(c, p.vector);
          if (dense) stored.vector = c.distance === 'Cosine' ? normalize(dense) : dense;
          stored.sparse = { ...stored.sparse, ...sparse };
        }
        return this.updated();
      }
      case 'POST /points/scroll': {
        const c = this.coll(name);
        const sorted = [...c.points.values()].filter((p) => matchFilter(body.filter as Record<string, unknown>, p)).sort((a, b) => (a.id < b.id ? -1 : 1));
        const from = body.offset == null ? 0 : sorted.findIndex((p) => p.id >= String(body.offset).toLowerCase());
        const limit = typeof body.limit === 'number' ? body.limit : 10;
        const page = from < 0 ? [] : sorted.slice(from, from + limit);
        const fields = Array.isArray(body.with_payload) ? body.with_payload as string[] : null;
        return {
          points: page.map((p) => ({ id: p.id, payload: fields ? Object.fromEntries(fields.filter((f) => f in p.payload).map((f) => [f, structuredClone(p.payload[f])])) : structuredClone(p.payload) })),
          next_page_offset: from >= 0 && from + limit < sorted.length ? sorted[from + limit]!.id : null,
        };
      }
      case 'POST /points/delete': {
        const c = this.coll(name);
        if (Array.isArray(body.points)) for (const id of body.points) c.points.delete(String(id).toLowerCase());
        else for (const p of [...c.points.values()]) if (matchFilter(body.filter as Record<string, unknown>, p)) c.points.delete(p.id);
        return this.updated();
      }
      case 'POST /points/payload': {
        const c = this.coll(name);
        const targets = Array.isArray(body.points)
          ? body.points.map((id) => c.points.get(String(id).toLowerCase())).filter((p): p is StoredPoint => !!p)
          : [...c.points.values()].filter((p) => matchFilter(body.filter as Record<string, unknown>, p));
        for (const p of targets) Object.assign(p.payload, structuredClone(body.payload as Payload));
        return this.updated();
      }
      case 'POST /points/count': {
        const c = this.coll(name);
        return { count: [...c.points.values()].filter((p) => matchFilter(body.filter as Record<string, unknown>, p)).length };
      }
      case 'POST /points/query': {
        const c = this.coll(name);
        if (typeof body.using === 'string' && body.using !== '') return this.sparseQuery(c, body.using, body);
        const query = body.query as number[];
        if (!Array.isArray(query) || query.length !== c.size) throw new HttpError(400, 'Wrong input: query vector dimension mismatch');
        const q = c.distance === 'Cosine' ? normalize(query) : query;
        const scored = [...c.points.values()]
          .filter((p) => matchFilter(body.filter as Record<string, unknown>, p))
          .map((p) => ({ p, score: p.vector.reduce((s, x, i) => s + x * q[i]!, 0) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, typeof body.limit === 'number' ? body.limit : 10);
        return {
          points: scored.map(({ p, score }) => ({
            id: p.id, version: 0, score, payload: body.with_payload ? structuredClone(p.payload) : null,
          })),
        };
      }
      default: {
        const v = /^\/vectors\/([^/]+)$/.exec(rest);
        if (method === 'PUT' && v) {
          const c = this.coll(name);
          const vectorName = decodeURIComponent(v[1]!);
          c.sparse ??= new Map();
          if (c.sparse.has(vectorName)) throw new HttpError(409, `Wrong input: Vector with name ${vectorName} already exists`);
          const cfg = (body as { sparse?: { modifier?: string } }).sparse;
          if (!cfg) throw new HttpError(400, 'mock: only sparse named vectors are supported');
          c.sparse.set(vectorName, { modifier: cfg.modifier });
          return this.updated();
        }
        throw new HttpError(404, `mock: no route ${method} ${path}`);
      }
    }
  }

  /** A point's vectors: a bare array is the default vector; an object maps names ("" = default) to dense or sparse vectors. */
  private splitVectors(c: Collection, vector: unknown): { dense?: number[]; sparse: Record<string, Sparse> } {
    if (Array.isArray(vector)) return { dense: vector as number[], sparse: {} };
    const sparse: Record<string, Sparse> = {};
    let dense: number[] | undefined;
    for (const [n, v] of Object.entries(vector as Record<string, unknown>)) {
      if (n === '') { dense = v as number[]; continue; }
      if (!c.sparse?.has(n)) throw new HttpError(400, `Wrong input: Not existing vector name error: ${n}`);
      const sv = v as Sparse;
      if (new Set(sv.indices).size !== sv.indices.length) throw new HttpError(400, 'Wrong input: sparse vector indices must be unique');
      sparse[n] = { indices: [...sv.indices], values: [...sv.values] };
    }
    return { dense, sparse };
  }

  /** Sparse search as Qdrant does it: only points sharing an index score; with the `idf` modifier each index is weighted by ln(1 + (N − n + 0.5)/(n + 0.5)). */
  private sparseQuery(c: Collection, using: string, body: Record<string, unknown>) {
    const cfg = c.sparse?.get(using);
    if (!cfg) throw new HttpError(400, `Wrong input: Not existing vector name error: ${using}`);
    const q = body.query as Sparse;
    if (!q || !Array.isArray(q.indices)) throw new HttpError(400, 'mock: sparse query expected');
    const withVector = [...c.points.values()].filter((p) => p.sparse?.[using]);
    const df = new Map<number, number>();
    for (const p of withVector) for (const i of p.sparse![using]!.indices) df.set(i, (df.get(i) ?? 0) + 1);
    const n = withVector.length;
    const idf = (i: number) => (cfg.modifier === 'idf' ? Math.log(1 + (n - (df.get(i) ?? 0) + 0.5) / ((df.get(i) ?? 0) + 0.5)) : 1);
    const scored = withVector
      .filter((p) => matchFilter(body.filter as Record<string, unknown>, p))
      .map((p) => {
        const d = p.sparse![using]!;
        let score = 0;
        let overlap = false;
        q.indices.forEach((i, k) => {
          const j = d.indices.indexOf(i);
          if (j >= 0) { overlap = true; score += q.values[k]! * idf(i) * d.values[j]!; }
        });
        return { p, score, overlap };
      })
      .filter((x) => x.overlap)
      .sort((a, b) => b.score - a.score)
      .slice(0, typeof body.limit === 'number' ? body.limit : 10);
    return { points: scored.map(({ p, score }) => ({ id: p.id, version: 0, score, payload: body.with_payload ? structuredClone(p.payload) : null })) };
  }
}

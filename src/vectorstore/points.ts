import type { ChunkPoint, VectorHit } from './interface.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Qdrant accepts only UUIDs (and answers with them lower-cased), so every adapter enforces the same
 * rule: a caller that passes tests against the in-memory or LanceDB store cannot fail in production.
 */
export function normalizePointId(id: string): string {
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new TypeError(`Point id must be a UUID, got ${JSON.stringify(id)}`);
  return id.toLowerCase();
}

export function assertVector(vector: number[], dimension: number | undefined, what = 'vector'): void {
  if (dimension === undefined) throw new Error('Vector store not initialised: call init(dimension) first');
  if (!Array.isArray(vector) || vector.length !== dimension) {
    throw new RangeError(`${what} has ${Array.isArray(vector) ? vector.length : 'no'} dimensions, the store expects ${dimension}`);
  }
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${what} contains a non-finite value`);
  }
}

export function assertStrings(values: unknown, what: string): asserts values is string[] {
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) throw new TypeError(`${what} must be an array of strings`);
}

/**
 * Validates a point and returns it normalised, sharing its vector and lists with the caller: for a
 * store that turns it into its own form before it awaits anything (a vector copied here would be
 * garbage as soon as it is serialised; at ingest that was a third of what outlived a young GC).
 */
export function checkPoint(p: ChunkPoint, dimension: number | undefined): ChunkPoint {
  assertVector(p.vector, dimension, `vector of point ${p.id}`);
  assertStrings(p.acl, 'acl');
  assertStrings(p.sectionPath, 'sectionPath');
  for (const k of ['documentId', 'sourceId', 'text'] as const) {
    if (typeof p[k] !== 'string') throw new TypeError(`${k} must be a string`);
  }
  if (p.context !== undefined && typeof p.context !== 'string') throw new TypeError('context must be a string');
  if (!Number.isSafeInteger(p.generation)) throw new TypeError('generation must be an integer');
  if (!Number.isSafeInteger(p.chunkIndex)) throw new TypeError('chunkIndex must be an integer');
  if (!Number.isFinite(p.lastModified)) throw new TypeError('lastModified must be epoch milliseconds');
  return {
    id: normalizePointId(p.id),
    vector: p.vector,
    documentId: p.documentId,
    sourceId: p.sourceId,
    generation: p.generation,
    chunkIndex: p.chunkIndex,
    sectionPath: p.sectionPath,
    text: p.text,
    ...(p.context !== undefined && p.context !== p.text ? { context: p.context } : {}),
    lastModified: p.lastModified,
    acl: p.acl,
  };
}

/** Validates a point and returns a normalised copy the caller cannot mutate behind the store's back. */
export function preparePoint(p: ChunkPoint, dimension: number | undefined): ChunkPoint {
  return ownArrays(checkPoint(p, dimension));
}

/** The same point (or row) with its own vector and lists, none shared with the caller's. */
export function ownArrays<P extends Pick<ChunkPoint, 'vector' | 'sectionPath' | 'acl'>>(p: P): P {
  return { ...p, vector: p.vector.slice(), sectionPath: [...p.sectionPath], acl: [...p.acl] };
}

/** Later points win, as they would if sent one by one; some backends reject duplicate keys in one batch. */
export function dedupeById(points: ChunkPoint[]): ChunkPoint[] {
  const byId = new Map<string, ChunkPoint>();
  for (const p of points) byId.set(p.id, p);
  return [...byId.values()];
}

/** A store is asked for at most this many hits; 0 when nothing should be asked at all. */
export function limitOf(topK: number): number {
  const limit = Math.floor(topK);
  return Number.isFinite(limit) && limit > 0 ? limit : 0;
}

export function withoutVector(p: ChunkPoint): VectorHit['point'] {
  const { vector: _vector, ...rest } = p;
  return { ...rest, sectionPath: [...rest.sectionPath], acl: [...rest.acl] };
}

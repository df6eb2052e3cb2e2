import { assertPermissionFilter, grantsNothing, matches, type PermissionFilter, type Principal } from '../access/index.ts';
import { queryTerms } from '../text/analyzer.ts';
import { Bm25Index } from './bm25.ts';
import type { ChunkPoint, VectorHit, VectorStore } from './interface.ts';
import { assertStrings, assertVector, dedupeById, limitOf, preparePoint, withoutVector } from './points.ts';

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * Brute-force in-process store for tests. It filters with the permission module's own `matches`,
 * so it is the reference the real adapters' translations are checked against.
 */
export class MemoryVectorStore implements VectorStore {
  readonly kind = 'memory';
  private dimension: number | undefined;
  private readonly points = new Map<string, ChunkPoint>();
  private readonly keywords = new Bm25Index();

  async init(dimension: number): Promise<void> {
    if (!Number.isSafeInteger(dimension) || dimension <= 0) throw new RangeError(`Invalid vector dimension ${dimension}`);
    if (this.dimension !== undefined && this.dimension !== dimension) {
      throw new Error(`Vector store holds vectors of size ${this.dimension}, not ${dimension}`);
    }
    this.dimension = dimension;
  }

  async upsert(points: ChunkPoint[]): Promise<void> {
    const prepared = dedupeById(points.map((p) => preparePoint(p, this.dimension)));
    for (const p of prepared) {
      this.points.set(p.id, p);
      this.keywords.add(p.id, p);
    }
  }

  async deleteDocument(documentId: string, opts?: { keepGeneration?: number }): Promise<void> {
    const keep = opts?.keepGeneration;
    for (const [id, p] of this.points) {
      if (p.documentId === documentId && (keep === undefined || p.generation !== keep)) this.drop(id);
    }
  }

  async deleteSource(sourceId: string): Promise<void> {
    for (const [id, p] of this.points) if (p.sourceId === sourceId) this.drop(id);
  }

  private drop(id: string): void {
    this.points.delete(id);
    this.keywords.remove(id);
  }

  async setDocumentAcl(documentId: string, acl: Principal[]): Promise<void> {
    assertStrings(acl, 'acl');
    for (const p of this.points.values()) if (p.documentId === documentId) p.acl = [...acl];
  }

  async search(vector: number[], filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    assertVector(vector, this.dimension, 'query vector');
    assertPermissionFilter(filter);
    const limit = limitOf(topK);
    if (limit === 0 || grantsNothing(filter)) return [];
    const hits: VectorHit[] = [];
    for (const p of this.points.values()) {
      if (!matches(filter, p)) continue;
      hits.push({ point: withoutVector(p), score: cosine(vector, p.vector) });
    }
    hits.sort((a, b) => b.score - a.score);
    return hits.slice(0, limit);
  }

  async keywordSearch(query: string, filter: PermissionFilter, topK: number): Promise<VectorHit[]> {
    if (typeof query !== 'string') throw new TypeError('query must be a string');
    assertPermissionFilter(filter);
    const limit = limitOf(topK);
    if (limit === 0 || grantsNothing(filter)) return [];
    const scores = this.keywords.score(queryTerms(query), (id) => matches(filter, this.points.get(id)!));
    return [...scores]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, limit)
      .map(([id, score]) => ({ point: withoutVector(this.points.get(id)!), score }));
  }

  async documentChunks(documentId: string, generation: number): Promise<Omit<ChunkPoint, 'vector'>[]> {
    return [...this.points.values()]
      .filter((p) => p.documentId === documentId && p.generation === generation)
      .sort((a, b) => a.chunkIndex - b.chunkIndex)
      .map(withoutVector);
  }

  async count(filter?: { sourceId?: string; documentId?: string }): Promise<number> {
    let n = 0;
    for (const p of this.points.values()) {
      if (filter?.sourceId !== undefined && p.sourceId !== filter.sourceId) continue;
      if (filter?.documentId !== undefined && p.documentId !== filter.documentId) continue;
      n++;
    }
    return n;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

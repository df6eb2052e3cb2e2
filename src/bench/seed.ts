import { chunkIdFor, documentIdFor } from '../indexer/hash.ts';
import type { Services } from '../context.ts';
import type { Source } from '../types.ts';
import type { ChunkPoint } from '../vectorstore/interface.ts';
import { paragraph, rng } from './corpus.ts';

export interface SyntheticIndex {
  source: Source;
  chunks: number;
  documents: number;
  /** `group:g<k>` principals on the documents; a caller holding one sees about 1/groups of the index. */
  groups: number;
}

/** A random unit vector: a million of these take seconds, a million model embeddings take days. */
export function randomUnitVector(r: () => number, dimension: number): number[] {
  const v = new Array<number>(dimension);
  let norm = 0;
  for (let i = 0; i < dimension; i++) {
    // Box–Muller: Gaussian components give directions uniform on the sphere.
    const g = Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
    v[i] = g;
    norm += g * g;
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < dimension; i++) v[i] = v[i]! / norm;
  return v;
}

/**
 * Fills the vector store and the registry with `chunks` synthetic chunks (four per document, each
 * document readable by one of `groups` groups and by `group:all-staff`), with random unit vectors
 * of the embedder's dimension and short random texts. For benchmarks of search at sizes that
 * cannot be embedded for real on this machine; the texts still feed the keyword channel.
 */
export async function seedSyntheticIndex(s: Services, opts: { chunks: number; groups: number; seed?: number; onProgress?: (done: number) => void }): Promise<SyntheticIndex> {
  const r = rng(opts.seed ?? 11);
  const source = await s.metadata.sources.create({
    name: `synthetic-${Date.now()}`, type: 'filesystem', config: { path: '/synthetic' }, credentialsEncrypted: null, schedule: null, freshness: { maxAgeDays: 365 },
  });
  const { run } = await s.metadata.runs.start(source.id, 'full');
  const dimension = s.embedder.dimension;
  const documents = Math.ceil(opts.chunks / 4);
  const BATCH = 2_000;
  let written = 0;
  for (let start = 0; start < opts.chunks; start += BATCH) {
    const points: ChunkPoint[] = [];
    for (let i = start; i < Math.min(opts.chunks, start + BATCH); i++) {
      const d = Math.floor(i / 4);
      const documentId = documentIdFor(source.id, `doc-${d}`);
      points.push({
        id: chunkIdFor(documentId, 1, i % 4), vector: randomUnitVector(r, dimension), documentId, sourceId: source.id,
        generation: 1, chunkIndex: i % 4, sectionPath: [], text: paragraph(r, 30), lastModified: 1_700_000_000_000,
        acl: ['group:all-staff', `group:g${d % opts.groups}`],
      });
    }
    await s.vectors.upsert(points);
    written += points.length;
    opts.onProgress?.(written);
  }
  for (let d = 0; d < documents; d++) {
    const acl = ['group:all-staff', `group:g${d % opts.groups}`].sort();
    await s.metadata.documents.upsert({
      id: documentIdFor(source.id, `doc-${d}`), sourceId: source.id, externalId: `doc-${d}`, title: `Document ${d}`, url: null, path: `/doc-${d}.md`,
      mimeType: 'text/markdown', owner: null, labels: [], lastModified: new Date(1_700_000_000_000), contentVersion: '1', contentHash: 'synthetic',
      aclHash: acl.join(','), acl, generation: 1, chunkCount: Math.min(4, opts.chunks - d * 4), status: 'indexed', error: null,
    }, run.id);
  }
  await s.metadata.runs.update(run.id, { status: 'succeeded', startedAt: new Date(), finishedAt: new Date() });
  return { source, chunks: opts.chunks, documents, groups: opts.groups };
}

import os from 'node:os';
import type { EmbeddingCache, EmbeddingCacheEntry } from './interface.ts';
import { SqlAggregate, batches, binaryCopyData, isUniqueViolation } from './sql.ts';

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** float32 little-endian, the layout of the `embeddings.vector` column. */
export function encodeVector(v: number[]): Buffer {
  if (LITTLE_ENDIAN) {
    // The typed array's own conversion: about half of writeFloatLE value by value, for every chunk a sync embeds.
    const f = Float32Array.from(v);
    return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  }
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf;
}

export function decodeVector(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(bytes.byteLength >>> 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

export class SqlEmbeddingCache extends SqlAggregate implements EmbeddingCache {
  async get(model: string, textHashes: string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const batch of batches([...new Set(textHashes)])) {
      const rows = await this.db.query<{ text_hash: string; vector: Uint8Array }>(
        'SELECT text_hash, vector FROM embeddings WHERE model = $1 AND text_hash = ANY($2)', [model, batch]);
      for (const r of rows) out.set(r.text_hash, decodeVector(r.vector));
    }
    return out;
  }

  async put(model: string, entries: EmbeddingCacheEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.db.copyBinary) {
      // Where the database runs on this thread (PGlite), a binary COPY costs it about two thirds of
      // what the INSERT below does: no hex text to build here and decode there, no statement with
      // thousands of parameters to parse. COPY has no ON CONFLICT, so a batch that meets a vector
      // already cached (two syncs embedding the same text at once) goes through the INSERT instead.
      const data = binaryCopyData(entries.map((e) => [model, e.textHash, encodeVector(e.vector), e.sourceId, e.documentId]));
      try {
        await this.db.copyBinary('embeddings', ['model', 'text_hash', 'vector', 'source_id', 'document_id'], data);
        return;
      } catch (err) {
        if (!isUniqueViolation(err, 'embeddings_pkey')) throw err;
      }
    }
    // Four parameters per row: bytea arrays are not portable across the two drivers' serialisers.
    for (const batch of batches(entries, 500)) {
      const params: unknown[] = [model];
      const values = batch.map((e) => {
        params.push(e.textHash, encodeVector(e.vector), e.sourceId, e.documentId);
        const n = params.length;
        return `($1, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
      });
      await this.db.query(
        `INSERT INTO embeddings (model, text_hash, vector, source_id, document_id) VALUES ${values.join(', ')}
         ON CONFLICT (model, text_hash) DO NOTHING`,
        params,
      );
    }
  }

  async forget(documentId: string, keep: string[] = []): Promise<void> {
    await this.db.query('DELETE FROM embeddings WHERE document_id = $1 AND NOT (text_hash = ANY($2))', [documentId, keep]);
  }
}

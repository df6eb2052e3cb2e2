import { createHash } from 'node:crypto';
import type { Embedder } from '../embedder/interface.ts';
import { normalise } from '../embedder/vector.ts';

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * A hashed bag of words in place of a model, for benchmarks of everything around the embedder
 * (memory over 100k documents would take hours through the real model on two cores). Its vectors
 * mean little; the work it saves is stated next to every figure it produced.
 */
export class HashEmbedder implements Embedder {
  readonly modelId: string;
  constructor(readonly dimension = 512, readonly maxTokens = 128) {
    this.modelId = `bench-hash:${dimension}`;
  }

  countTokens(text: string): number {
    return (text.match(WORD)?.length ?? 0) + 2;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((t) => {
      const v = new Array<number>(this.dimension).fill(0);
      for (const w of t.toLowerCase().match(WORD) ?? []) {
        const h = createHash('md5').update(w).digest();
        v[h.readUInt32LE(0) % this.dimension]! += h[4]! & 1 ? 1 : -1;
      }
      v[0]! += 1e-3;
      return normalise(v);
    });
  }
}

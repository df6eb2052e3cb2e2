import type { Embedder } from '../../src/embedder/interface.ts';
import { normalise } from '../../src/embedder/vector.ts';

export interface FakeEmbedderOptions {
  dimension?: number;
  maxTokens?: number;
  modelId?: string;
  /** Artificial latency per embed call, for tests of concurrency and timeouts. */
  delayMs?: number;
}

const TOKEN_RE = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;

/**
 * Deterministic stand-in for a real model: a hashed bag of words (feature hashing with a sign bit),
 * so texts sharing words land close together and unrelated texts are near-orthogonal. Fast enough
 * for unit tests of every other layer, and it counts what it was asked to do.
 */
export class FakeEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimension: number;
  readonly maxTokens: number;
  private readonly delayMs: number;
  /** embed/embedQuery invocations so far. */
  calls = 0;
  /** Texts embedded so far, across all calls. */
  textsEmbedded = 0;
  /** Every text given to embed, in order. */
  readonly embeddedTexts: string[] = [];
  private failures: Error[] = [];

  constructor(opts: FakeEmbedderOptions = {}) {
    this.dimension = opts.dimension ?? 64;
    this.maxTokens = opts.maxTokens ?? 256;
    this.modelId = opts.modelId ?? `fake:${this.dimension}`;
    this.delayMs = opts.delayMs ?? 0;
  }

  /** The next `times` embed calls reject with `err` (e.g. an UpstreamError) before doing anything. */
  failNext(err: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(err);
  }

  resetCounters(): void {
    this.calls = 0;
    this.textsEmbedded = 0;
    this.embeddedTexts.length = 0;
  }

  /** Words count one token; long words several, as subword tokenizers would split them. */
  countTokens(text: string): number {
    let n = 0;
    for (const m of text.matchAll(TOKEN_RE)) n += m[0].length > 8 ? Math.ceil(m[0].length / 5) : 1;
    return n;
  }

  async embed(texts: string[]): Promise<number[][]> {
    await this.enter();
    this.textsEmbedded += texts.length;
    this.embeddedTexts.push(...texts);
    return texts.map((t) => this.vector(t));
  }

  async embedQuery(text: string): Promise<number[]> {
    await this.enter();
    return this.vector(text);
  }

  /** The vector `embed` would return, without counting a call. */
  vector(text: string): number[] {
    const v = new Array<number>(this.dimension).fill(0);
    let any = false;
    for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
      const h = fnv1a(m[0]);
      v[h % this.dimension] += (h & 0x80000000) ? -1 : 1;
      any = true;
    }
    if (!any) v[0] = 1;
    const n = normalise(v);
    // Words whose hashes cancel out leave a zero vector; keep the unit-length promise anyway.
    return n.some((x) => x !== 0) ? n : [1, ...new Array<number>(this.dimension - 1).fill(0)];
  }

  private async enter(): Promise<void> {
    this.calls++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const err = this.failures.shift();
    if (err) throw err;
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

import OpenAI from 'openai';
import { UpstreamError, errorMessage, parseRetryAfter } from '../errors.ts';
import type { Embedder } from './interface.ts';
import { normalise } from './vector.ts';

export const DEFAULT_OPENAI_MODEL = 'text-embedding-3-small';

/** Published sizes of OpenAI's embedding models; other servers' models are probed once at start. */
const KNOWN: Record<string, { dimension: number; maxTokens: number }> = {
  'text-embedding-3-small': { dimension: 1536, maxTokens: 8191 },
  'text-embedding-3-large': { dimension: 3072, maxTokens: 8191 },
  'text-embedding-ada-002': { dimension: 1536, maxTokens: 8191 },
};

export interface OpenAiEmbedderOptions {
  apiKey: string;
  /** Any OpenAI-compatible API root, e.g. http://localhost:11434/v1; default api.openai.com. */
  baseURL?: string;
  model?: string;
  batchSize?: number;
  /** Input limit in tokens; defaults to 8191 for OpenAI models and 512 for anything else. */
  maxTokens?: number;
  /** Vector width when known in advance; otherwise taken from the table or a probe request. */
  dimension?: number;
  /** Requested width for models that can shorten their output (text-embedding-3-*). */
  dimensions?: number;
  timeoutMs?: number;
  /** Attempts after the first for 408/409/429/5xx and connection failures. */
  maxRetries?: number;
  /**
   * Longest wait honoured in-process. A Retry-After beyond it is surfaced as a retryable
   * UpstreamError so the job runner can reschedule instead of holding a worker.
   */
  maxRetryWaitSeconds?: number;
  /** Base of the exponential backoff when the server gives no Retry-After. */
  backoffBaseMs?: number;
}

export class OpenAiEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimension: number;
  readonly maxTokens: number;
  readonly model: string;
  private readonly client: OpenAI;
  private readonly opts: Required<Pick<OpenAiEmbedderOptions, 'batchSize' | 'timeoutMs' | 'maxRetries' | 'maxRetryWaitSeconds' | 'backoffBaseMs'>> & { dimensions?: number };

  private constructor(opts: OpenAiEmbedderOptions, dimension: number) {
    this.model = opts.model ?? DEFAULT_OPENAI_MODEL;
    const host = opts.baseURL ? new URL(opts.baseURL).host : 'api.openai.com';
    this.modelId = `openai:${host}:${this.model}${opts.dimensions ? `:${opts.dimensions}` : ''}`;
    this.dimension = dimension;
    this.maxTokens = opts.maxTokens ?? KNOWN[this.model]?.maxTokens ?? 512;
    // The SDK's own retries would sleep for any Retry-After, however long; ours cap the wait.
    this.client = new OpenAI({ apiKey: opts.apiKey, baseURL: opts.baseURL, maxRetries: 0, timeout: opts.timeoutMs ?? 60_000 });
    this.opts = {
      batchSize: opts.batchSize ?? 32,
      timeoutMs: opts.timeoutMs ?? 60_000,
      maxRetries: opts.maxRetries ?? 4,
      maxRetryWaitSeconds: opts.maxRetryWaitSeconds ?? 30,
      backoffBaseMs: opts.backoffBaseMs ?? 500,
      dimensions: opts.dimensions,
    };
  }

  static async create(opts: OpenAiEmbedderOptions): Promise<OpenAiEmbedder> {
    const model = opts.model ?? DEFAULT_OPENAI_MODEL;
    const known = opts.dimension ?? opts.dimensions ?? KNOWN[model]?.dimension;
    if (known) return new OpenAiEmbedder(opts, known);
    const probe = new OpenAiEmbedder(opts, 0);
    const [v] = await probe.request(['dimension probe']);
    return new OpenAiEmbedder(opts, v.length);
  }

  /**
   * No tokenizer ships for remote models, so this over-estimates: about 3 ASCII characters per
   * token (BPE averages nearer 4 for English) and 2 tokens for every other character (CJK, emoji).
   */
  countTokens(text: string): number {
    let ascii = 0;
    let other = 0;
    for (const ch of text) {
      if (ch.charCodeAt(0) < 128) ascii++;
      else other++;
    }
    return Math.ceil(ascii / 3) + other * 2;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.opts.batchSize) {
      out.push(...(await this.request(texts.slice(i, i + this.opts.batchSize))));
    }
    return out;
  }

  async embedQuery(text: string): Promise<number[]> {
    const [v] = await this.request([text]);
    return v;
  }

  private async request(texts: string[]): Promise<number[][]> {
    // The API rejects empty strings and over-long inputs outright; neither should fail a whole batch.
    const input = texts.map((t) => this.fit(t));
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.client.embeddings.create(
          { model: this.model, input, encoding_format: 'float', ...(this.opts.dimensions ? { dimensions: this.opts.dimensions } : {}) },
          { timeout: this.opts.timeoutMs, maxRetries: 0 },
        );
        return this.parse(res, input.length);
      } catch (err) {
        const up = toUpstreamError(err, this.model);
        if (!up.retryable || attempt >= this.opts.maxRetries) throw up;
        const waitSeconds = up.retryAfterSeconds ?? backoffSeconds(attempt, this.opts.backoffBaseMs);
        if (waitSeconds > this.opts.maxRetryWaitSeconds) throw up;
        await new Promise((r) => setTimeout(r, waitSeconds * 1000));
      }
    }
  }

  private fit(text: string): string {
    if (text.length === 0) return ' ';
    if (this.countTokens(text) <= this.maxTokens) return text;
    // Cut to a length whose estimate fits; the estimate is conservative, so the server accepts it.
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.countTokens(text.slice(0, mid)) <= this.maxTokens) lo = mid;
      else hi = mid - 1;
    }
    return text.slice(0, lo) || ' ';
  }

  private parse(res: OpenAI.Embeddings.CreateEmbeddingResponse, expected: number): number[][] {
    const data = Array.isArray(res?.data) ? [...res.data] : [];
    if (data.length !== expected) {
      throw new UpstreamError(`Embedding API returned ${data.length} vectors for ${expected} inputs`, { retryable: false });
    }
    data.sort((a, b) => a.index - b.index);
    return data.map((d) => {
      const v = d.embedding as unknown;
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        throw new UpstreamError('Embedding API returned a malformed vector', { retryable: false });
      }
      if (this.dimension && v.length !== this.dimension) {
        throw new UpstreamError(`Embedding API returned ${v.length}-d vectors, expected ${this.dimension}`, { retryable: false });
      }
      // Compatible servers do not all normalise; cosine scores downstream assume unit length.
      return normalise(v as number[]);
    });
  }
}

function backoffSeconds(attempt: number, baseMs: number): number {
  const ms = Math.min(baseMs * 2 ** attempt, 8_000);
  return (ms * (0.75 + Math.random() * 0.25)) / 1000;
}

function retryAfterOf(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return ms / 1000;
  return parseRetryAfter(headers.get('retry-after'));
}

export function toUpstreamError(err: unknown, model: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof OpenAI.APIUserAbortError) {
    return new UpstreamError(`Embedding request aborted: ${errorMessage(err)}`, { retryable: false, cause: err });
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    // No status: connection refused, reset or timed out.
    const retryable = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
    return new UpstreamError(
      `Embedding API (${model}) ${status ? `returned ${status}` : 'unreachable'}: ${errorMessage(err)}`,
      { retryable, status, retryAfterSeconds: retryAfterOf(err.headers), cause: err },
    );
  }
  return new UpstreamError(`Embedding API (${model}) failed: ${errorMessage(err)}`, { retryable: false, cause: err });
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamError } from '../src/errors.ts';
import { OpenAiEmbedder } from '../src/embedder/openai.ts';
import { dot } from '../src/embedder/vector.ts';

interface Seen { auth?: string; body: { model: string; input: string[]; encoding_format?: string } }

/** A minimal OpenAI-compatible /v1/embeddings. `script` answers requests in turn; then it serves normally. */
const seen: Seen[] = [];
let script: Array<(res: http.ServerResponse) => void> = [];
let baseURL: string;

// Unnormalised on purpose ([length, 1, 2]) and returned in reverse order: the client must sort and normalise.
function vectorFor(text: string): number[] {
  return [text.length, 1, 2];
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => { raw += c; });
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.parse(raw) as Seen['body'];
    seen.push({ auth: req.headers.authorization, body });
    const step = script.shift();
    if (step) return step(res);
    const data = body.input.map((t, index) => ({ object: 'embedding', index, embedding: vectorFor(t) })).reverse();
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } }));
  });
});

const errorReply = (status: number, headers: Record<string, string> = {}) => (res: http.ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify({ error: { message: `status ${status}`, type: 'test', code: null } }));
};

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => { seen.length = 0; script = []; });

const make = (extra: Partial<Parameters<typeof OpenAiEmbedder.create>[0]> = {}) =>
  OpenAiEmbedder.create({ apiKey: 'sk-test', baseURL, model: 'acme-embed', backoffBaseMs: 10, ...extra });

describe('OpenAiEmbedder', () => {
  it('probes an unknown model for its dimension', async () => {
    const e = await make();
    expect(e.dimension).toBe(3);
    expect(e.maxTokens).toBe(512);
    expect(seen).toHaveLength(1);
    expect(seen[0].auth).toBe('Bearer sk-test');
    expect(e.modelId).toBe(`openai:${new URL(baseURL).host}:acme-embed`);
  });

  it('knows OpenAI models without a request', async () => {
    const e = await make({ model: 'text-embedding-3-small' });
    expect(e.dimension).toBe(1536);
    expect(e.maxTokens).toBe(8191);
    expect(seen).toHaveLength(0);
    // The estimate must not undercount: BPE averages about 4 characters per English token.
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    expect(e.countTokens(text)).toBeGreaterThanOrEqual(Math.ceil(text.length / 4));
    expect(e.countTokens('日本語のテキスト')).toBeGreaterThanOrEqual(8);
  });

  it('batches by batchSize, keeps order and returns unit vectors', async () => {
    const e = await make({ batchSize: 2, dimension: 3 });
    const texts = ['a', 'bb', 'ccc', 'dddd', ''];
    const out = await e.embed(texts);
    expect(seen.map((s) => s.body.input.length)).toEqual([2, 2, 1]);
    expect(seen.flatMap((s) => s.body.input)).toEqual(['a', 'bb', 'ccc', 'dddd', ' ']);
    expect(seen.every((s) => s.body.model === 'acme-embed' && s.body.encoding_format === 'float')).toBe(true);
    texts.forEach((t, i) => {
      const want = vectorFor(t || ' ');
      const n = Math.sqrt(dot(want, want));
      expect(dot(out[i], out[i])).toBeCloseTo(1, 9);
      expect(out[i][0]).toBeCloseTo(want[0] / n, 9);
    });
  });

  it('waits out a 429 for its Retry-After, then succeeds', async () => {
    const e = await make({ dimension: 3 });
    script = [errorReply(429, { 'retry-after': '1' })];
    const t0 = Date.now();
    const [v] = await e.embed(['hello']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(seen).toHaveLength(2);
    expect(v).toHaveLength(3);
  });

  it('hands a long Retry-After back to the caller instead of sleeping', async () => {
    const e = await make({ dimension: 3, maxRetryWaitSeconds: 5 });
    script = [errorReply(429, { 'retry-after': '120' })];
    const err = await e.embed(['hello']).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: true, retryAfterSeconds: 120, status: 429 });
    expect(seen).toHaveLength(1);
  });

  it('turns a 400 into a non-retryable UpstreamError without retrying', async () => {
    const e = await make({ dimension: 3 });
    script = [errorReply(400)];
    const err = await e.embed(['hello']).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: false, status: 400 });
    expect(seen).toHaveLength(1);
  });

  it('gives up on persistent 5xx after maxRetries with a retryable error', async () => {
    const e = await make({ dimension: 3, maxRetries: 2 });
    script = [errorReply(503), errorReply(500), errorReply(502)];
    const err = await e.embed(['hello']).catch((x: unknown) => x);
    expect(err).toMatchObject({ retryable: true, status: 502 });
    expect(seen).toHaveLength(3);
  });

  it('times out a hung request as a retryable error', async () => {
    const e = await make({ dimension: 3, maxRetries: 0, timeoutMs: 200 });
    script = [() => { /* never answers */ }];
    const err = await e.embed(['hello']).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).retryable).toBe(true);
    expect((err as UpstreamError).status).toBeUndefined();
  });

  it('rejects a response with the wrong number of vectors', async () => {
    const e = await make({ dimension: 3 });
    script = [(res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [] }))];
    await expect(e.embed(['a', 'b'])).rejects.toMatchObject({ retryable: false });
  });
});

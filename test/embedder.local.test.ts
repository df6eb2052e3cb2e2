import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { UpstreamError } from '../src/errors.ts';
import { createEmbedder } from '../src/embedder/index.ts';
import { LocalEmbedder, conventionsFor } from '../src/embedder/local.ts';
import { dot } from '../src/embedder/vector.ts';
import type { InferenceWorker } from '../src/embedder/inference-worker.ts';
import { modelAvailable, modelPath } from './support/services.ts';

const MODEL_DIR = modelPath();
const haveModel = modelAvailable();

/** Every request transformers.js makes goes through env.fetch; anything but loopback fails the test. */
const fetched: string[] = [];
const realFetch = env.fetch;
beforeAll(() => {
  env.fetch = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    fetched.push(url.href);
    if (url.hostname !== '127.0.0.1') throw new Error(`test tried to reach ${url.href}`);
    return realFetch(input, init);
  }) as typeof env.fetch;
});
afterAll(() => { env.fetch = realFetch; });

const norm = (v: number[]) => Math.sqrt(dot(v, v));

describe('conventionsFor', () => {
  it('knows bge uses CLS pooling and a query instruction, and defaults to mean', () => {
    expect(conventionsFor('Xenova/bge-small-en-v1.5')).toEqual({
      pooling: 'cls', queryPrefix: 'Represent this sentence for searching relevant passages: ', documentPrefix: '',
    });
    expect(conventionsFor('Xenova/multilingual-e5-small')).toMatchObject({ pooling: 'mean', queryPrefix: 'query: ', documentPrefix: 'passage: ' });
    expect(conventionsFor('Xenova/all-MiniLM-L6-v2')).toEqual({ pooling: 'mean', queryPrefix: '', documentPrefix: '' });
  });
});

describe.runIf(haveModel)('LocalEmbedder from LOCAL_MODEL_PATH', () => {
  let e: LocalEmbedder;
  beforeAll(async () => {
    fetched.length = 0;
    e = await LocalEmbedder.create({ modelPath: MODEL_DIR, batchSize: 2 });
  });
  afterAll(async () => { await e?.close(); });

  it('reports the model facts without touching the network', () => {
    expect(e.modelId).toBe('local:universal-sentence-encoder-lite');
    expect(e.dimension).toBe(512);
    expect(e.maxTokens).toBe(128);
    expect(fetched).toEqual([]);
  });

  it('batches queries that arrive together into shared inferences, with the same vectors as one at a time', async () => {
    const texts = ['expense approval', 'incident runbook', 'holiday calendar', 'vendor contract', 'laptop refresh'];
    const alone: number[][] = [];
    for (const t of texts) alone.push(await e.embedQuery(t));
    const inner = e as unknown as { infer: (texts: string[]) => Promise<number[][]> };
    const original = inner.infer.bind(e);
    const sizes: number[] = [];
    inner.infer = async (batch) => { sizes.push(batch.length); return original(batch); };
    try {
      const together = await Promise.all(texts.map((t) => e.embedQuery(t)));
      // batchSize 2: the first query runs at once, the other four in two shared inferences.
      expect(sizes.length).toBeLessThan(texts.length);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
      together.forEach((v, i) => expect(dot(v, alone[i]!)).toBeCloseTo(1, 4));
    } finally {
      inner.infer = original;
    }
  });

  it('returns unit vectors where paraphrases are closer than unrelated text', async () => {
    const [cat, kitten, revenue, rain] = await e.embed([
      'The cat sat on the mat.',
      'A kitten is sitting on a rug.',
      'Quarterly revenue grew by five percent.',
      'It will rain heavily tomorrow afternoon.',
    ]);
    for (const v of [cat, kitten, revenue, rain]) {
      expect(v).toHaveLength(512);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    expect(dot(cat, kitten)).toBeGreaterThan(dot(cat, revenue) + 0.3);
    expect(dot(cat, kitten)).toBeGreaterThan(dot(cat, rain));
    expect(fetched).toEqual([]);
  });

  it('keeps input order across length-sorted batches', async () => {
    const texts = ['a much longer sentence about databases and indexing', 'short', 'medium length text here', '', 'x y'];
    const batched = await e.embed(texts);
    for (let i = 0; i < texts.length; i++) {
      const [alone] = await e.embed([texts[i]]);
      expect(dot(alone, batched[i])).toBeCloseTo(1, 5);
    }
    expect(await e.embed([])).toEqual([]);
  });

  it('counts tokens with the model tokenizer and truncates at maxTokens', async () => {
    expect(e.countTokens('')).toBe(0);
    expect(e.countTokens('Hello world')).toBeGreaterThan(1);
    expect(e.countTokens('Hello world, this is a longer sentence.')).toBeGreaterThan(e.countTokens('Hello world'));
    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
    expect(e.countTokens(long)).toBeGreaterThan(128);
    // Everything past token 128 is dropped, so a different tail changes nothing.
    const [a, b] = await e.embed([`${long} about cats`, `${long} about finance and quarterly taxes`]);
    expect(dot(a, b)).toBeCloseTo(1, 5);
  });

  it('counts exactly what the tokenizer encodes', async () => {
    const tok = await AutoTokenizer.from_pretrained(MODEL_DIR, { local_files_only: true });
    for (const t of ['', 'a', 'Hello, world!', 'naïve café — 東京 🙂', '  spaced  out  ', 'x'.repeat(500), 'line\nbreaks\n\nhere']) {
      expect(e.countTokens(t), t).toBe(tok.encode(t).length);
    }
  });

  it("gives the export's own pooled output, normalised, as ONNX Runtime computes it with every output requested", async () => {
    // The inference thread asks this export for `sentence_embedding` alone; the vectors must be
    // what the model gives when it computes everything, as transformers.js runs it.
    const ort = await import('onnxruntime-node');
    const tok = await AutoTokenizer.from_pretrained(MODEL_DIR, { local_files_only: true });
    const session = await ort.InferenceSession.create(path.join(MODEL_DIR, 'onnx', 'model.onnx'));
    expect(session.outputNames).toEqual(expect.arrayContaining(['sentence_embedding', 'last_hidden_state']));
    const texts = ['Quarterly travel expense policy', 'a', 'How do I rotate the on-call pager when a colleague is sick?'];
    const enc = tok(texts, { padding: true, truncation: true, max_length: 128 });
    const feeds = {
      input_ids: new ort.Tensor('int64', enc.input_ids.data as BigInt64Array, enc.input_ids.dims),
      attention_mask: new ort.Tensor('int64', enc.attention_mask.data as BigInt64Array, enc.attention_mask.dims),
    };
    const all = await session.run(feeds);
    await session.release();
    const pooled = all.sentence_embedding!.data as Float32Array;
    const got = await e.embed(texts);
    texts.forEach((t, i) => {
      const want = Array.from(pooled.subarray(i * 512, (i + 1) * 512));
      const n = norm(want);
      got[i]!.forEach((v, k) => expect(v, `${t} [${k}]`).toBeCloseTo(want[k]! / n, 5));
    });
  });

  it('embeds from ids tokenized on this thread (kept from counting, or encoded to sort a call by length), with the vectors their texts give', async () => {
    // Different lengths, so that batches of two are padded.
    const texts = [
      'Expense approval guide > Step 1\n\nThe finance team reviews every request within five days.',
      'A second measured passage, about incident response and runbooks.',
      'A third, longer passage: the on-call engineer escalates a severity one outage to the manager and notifies the customer weekly.',
    ];
    const worker = (e as unknown as { model: InferenceWorker }).model;
    const kept = (e as unknown as { encodings: Map<string, number[]> }).encodings;
    expect(worker.acceptsIds).toBe(true);
    // The reference: the inference thread tokenizes the texts itself.
    const fromText = await worker.run(texts);
    const runIds = vi.spyOn(worker, 'runIds');
    try {
      e.forgetEncodings();
      const unmeasured = await e.embed(texts);
      expect(runIds).toHaveBeenCalledTimes(2);
      unmeasured.forEach((v, i) => expect(dot(v, fromText[i]!)).toBeCloseTo(1, 6));
      runIds.mockClear();
      for (const t of texts) e.countTokens(t);
      expect(kept.size).toBe(texts.length);
      const measured = await e.embed(texts);
      expect(runIds).toHaveBeenCalledTimes(2);
      measured.forEach((v, i) => expect(dot(v, fromText[i]!)).toBeCloseTo(1, 6));
      // Ids are used once: nothing is left behind for texts already embedded.
      expect(kept.size).toBe(0);
    } finally {
      runIds.mockRestore();
    }
  });

  it('batches a call by token length, not characters', async () => {
    // Characters and tokens disagree: digits and rare words take more tokens per character.
    const texts = ['short one here, but worded with many plain words of English', 'x9q7z3k8w2v5q1x9q7z3k8', 'tiny', 'a plain sentence of several common words', 'x9q7 z3k8 w2v5 q1'];
    const order = [...texts].sort((a, b) => e.countTokens(a) - e.countTokens(b));
    expect(order).not.toEqual([...texts].sort((a, b) => a.length - b.length));
    e.forgetEncodings();
    const worker = (e as unknown as { model: InferenceWorker }).model;
    const original = worker.runIds.bind(worker);
    const batches: number[][] = [];
    // The lengths are copied before the call hands their buffer to the inference thread.
    const runIds = vi.spyOn(worker, 'runIds').mockImplementation((ids, lengths) => {
      batches.push([...lengths]);
      return original(ids, lengths);
    });
    try {
      await e.embed(texts);
      expect(batches.length).toBeGreaterThan(1);
      const seen = batches.flat();
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    } finally {
      runIds.mockRestore();
    }
  });

  it('batches the texts of calls made together, shortest first, and runs a query before waiting documents', async () => {
    const texts = ['a fairly long passage about the quarterly budget review and its many approvals', 'tiny', 'short text here', 'another long passage, about laptops, refresh cycles and procurement rules'];
    const alone: number[][] = [];
    for (const t of texts) alone.push((await e.embed([t]))[0]!);
    const worker = (e as unknown as { model: InferenceWorker }).model;
    const original = worker.runIds.bind(worker);
    const runs: number[][] = [];
    const order: string[] = [];
    const runIds = vi.spyOn(worker, 'runIds').mockImplementation((ids, lengths) => {
      runs.push([...lengths]);
      order.push(`documents:${lengths.length}`);
      return original(ids, lengths);
    });
    const inner = e as unknown as { infer: (texts: string[]) => Promise<number[][]> };
    const infer = inner.infer.bind(e);
    inner.infer = async (batch) => { order.push(`query:${batch.length}`); return infer(batch); };
    try {
      // Two calls, each with a long and a short text: the short ones of both go in one batch.
      const [first, second, query] = await Promise.all([e.embed([texts[0]!, texts[1]!]), e.embed([texts[2]!, texts[3]!]), e.embedQuery('budget')]);
      [...first, ...second].forEach((v, i) => expect(dot(v, alone[i]!)).toBeCloseTo(1, 5));
      expect(query).toHaveLength(512);
      expect(runs).toHaveLength(2);
      expect(runs[0]).toEqual([e.countTokens(texts[1]!), e.countTokens(texts[2]!)]);
      expect(Math.min(...runs[1]!)).toBeGreaterThanOrEqual(Math.max(...runs[0]!));
      // Asked for after the documents, the query still went first.
      expect(order).toEqual(['query:1', 'documents:2', 'documents:2']);
    } finally {
      runIds.mockRestore();
      inner.infer = infer;
    }
  });

  it('fails the calls whose batch failed, drops their other texts, and keeps serving the rest', async () => {
    const worker = (e as unknown as { model: InferenceWorker }).model;
    const original = worker.runIds.bind(worker);
    const runs: number[] = [];
    let fail = true;
    const runIds = vi.spyOn(worker, 'runIds').mockImplementation((ids, lengths) => {
      runs.push(lengths.length);
      if (fail) {
        fail = false;
        return Promise.reject(new Error('inference failed'));
      }
      return original(ids, lengths);
    });
    try {
      // batchSize 2: the first batch holds the two shortest texts, one from each call.
      const a = e.embed(['a', 'a somewhat longer text for the failing call', 'and a third, the longest of the calls in this test']);
      const b = e.embed(['b', 'some words']);
      await expect(a).rejects.toThrow('inference failed');
      await expect(b).rejects.toThrow('inference failed');
      expect(runs).toEqual([2]);
      const [again] = await e.embed(['b']);
      expect(again).toHaveLength(512);
    } finally {
      runIds.mockRestore();
    }
  });

  it('embeds queries (no instruction prefix for this model)', async () => {
    const q = await e.embedQuery('where did the cat sit?');
    const [d] = await e.embed(['where did the cat sit?']);
    expect(dot(q, d)).toBeCloseTo(1, 5);
  });

  it('refuses a folder that is not a model', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clearance-nomodel-'));
    try {
      await expect(LocalEmbedder.create({ modelPath: dir })).rejects.toThrow(/config\.json is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Serves the shared model the way the Hugging Face hub does: /<org>/<name>/resolve/<revision>/<file>. */
function hubServer(repo: string) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(req.url ?? '');
    const file = m && m[1] === repo ? path.join(MODEL_DIR, decodeURIComponent(m[2])) : null;
    if (!file || !file.startsWith(MODEL_DIR + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return {
    requests,
    start: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`))),
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe.runIf(haveModel)('LocalEmbedder downloading from HF_ENDPOINT', () => {
  let cacheDir: string;
  beforeAll(() => { cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clearance-models-')); });
  afterAll(() => { fs.rmSync(cacheDir, { recursive: true, force: true }); });

  it('downloads once into the cache, then loads from the cache with the server gone', async () => {
    const hub = hubServer('acme/use-lite');
    const endpoint = await hub.start();
    let first: LocalEmbedder | undefined;
    let reference: number[];
    try {
      first = await LocalEmbedder.create({ model: 'acme/use-lite', cacheDir, remoteHost: endpoint });
      expect(first.modelId).toBe('local:acme/use-lite');
      expect(first.dimension).toBe(512);
      expect(first.maxTokens).toBe(128);
      [reference] = await first.embed(['The cat sat on the mat.']);
    } finally {
      await first?.close();
      await hub.stop();
    }
    const paths = hub.requests.map((r) => r.split(' ')[1]);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) {
      expect(paths).toContain(`/acme/use-lite/resolve/main/${f}`);
    }
    expect(fs.statSync(path.join(cacheDir, 'acme/use-lite/onnx/model.onnx')).size)
      .toBe(fs.statSync(path.join(MODEL_DIR, 'onnx/model.onnx')).size);

    // Same settings through the config path, with nothing listening on the endpoint any more.
    const seenBefore = fetched.length;
    const config = loadConfig({ EMBEDDING_MODEL: 'acme/use-lite', MODEL_CACHE_DIR: cacheDir, HF_ENDPOINT: endpoint, CLEARANCE_DATA_DIR: cacheDir });
    const second = await createEmbedder(config);
    try {
      expect(second.dimension).toBe(512);
      const [again] = await second.embed(['The cat sat on the mat.']);
      expect(dot(again, reference!)).toBeCloseTo(1, 6);
      expect(fetched.length).toBe(seenBefore);
    } finally {
      await second.close?.();
    }
  });

  it('reports a model the hub does not have as a non-retryable UpstreamError', async () => {
    const hub = hubServer('acme/use-lite');
    const endpoint = await hub.start();
    try {
      const err = await LocalEmbedder.create({ model: 'acme/missing', cacheDir, remoteHost: endpoint }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).retryable).toBe(false);
      expect((err as Error).message).toMatch(/acme\/missing/);
    } finally {
      await hub.stop();
    }
  });
});

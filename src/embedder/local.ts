import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AutoConfig,
  AutoTokenizer,
  env,
  LogLevel,
  ModelFileNotFoundError,
  type PreTrainedTokenizer,
} from '@huggingface/transformers';
import { UpstreamError, errorMessage } from '../errors.ts';
import { InferenceWorker, WorkerLoadError } from './inference-worker.ts';
import { SegmentedEncoder } from './segmented-encoder.ts';
import { BatchPool } from './batch-pool.ts';
import type { Embedder } from './interface.ts';

export type Pooling = 'mean' | 'cls';

export interface ModelConventions {
  pooling: Pooling;
  /** Prepended to queries by `embedQuery` (asymmetric retrieval models are trained this way). */
  queryPrefix: string;
  /** Prepended to every document text by `embed`; counted by `countTokens` so chunk bounds stay true. */
  documentPrefix: string;
}

/**
 * Pooling and instruction prefixes of well-known models, from their model cards. Anything not listed
 * gets mean pooling and no prefixes, which is the sentence-transformers default.
 */
const KNOWN_MODELS: Array<{ match: RegExp } & Partial<ModelConventions>> = [
  { match: /bge-(small|base|large)-en/i, pooling: 'cls', queryPrefix: 'Represent this sentence for searching relevant passages: ' },
  { match: /bge-m3/i, pooling: 'cls' },
  { match: /snowflake-arctic-embed-(xs|s|m|l)(-v1\.5)?$/i, pooling: 'cls', queryPrefix: 'Represent this sentence for searching relevant passages: ' },
  { match: /mxbai-embed-large/i, pooling: 'cls', queryPrefix: 'Represent this sentence for searching relevant passages: ' },
  { match: /gte-(base|large)-en-v1\.5/i, pooling: 'cls' },
  { match: /(^|\/)(multilingual-)?e5-/i, pooling: 'mean', queryPrefix: 'query: ', documentPrefix: 'passage: ' },
  { match: /nomic-embed-text/i, pooling: 'mean', queryPrefix: 'search_query: ', documentPrefix: 'search_document: ' },
];

export function conventionsFor(modelName: string): ModelConventions {
  const known = KNOWN_MODELS.find((k) => k.match.test(modelName));
  return {
    pooling: known?.pooling ?? 'mean',
    queryPrefix: known?.queryPrefix ?? '',
    documentPrefix: known?.documentPrefix ?? '',
  };
}

/** Token counts of texts up to this long (words, short headings) are remembered, up to this many (a few MB). */
const WORD_CACHE_MAX_CHARS = 32;
const WORD_CACHE_ENTRIES = 100_000;
/**
 * Token ids of measured passages kept for their embedding, oldest dropped first: enough for the
 * pages a sync has chunked but not yet embedded (a few thousand chunks; about 1 KB each at 128 tokens).
 */
const ENCODING_CACHE_ENTRIES = 4096;
/**
 * How many batches may go before a waiting document text (batch-pool.ts): about one page of a
 * sync, so a page's longest texts wait for the next page's shorter ones but not for the pages after.
 */
const MAX_PASSED = 16;

interface EmbedCall {
  vectors: number[][];
  left: number;
  failed: boolean;
  resolve: (vectors: number[][]) => void;
  reject: (err: unknown) => void;
}

/** A document text waiting for the model: its call, its place in the call, and its ids if tokenized here. */
interface WaitingText {
  call: EmbedCall;
  index: number;
  text: string;
  ids?: number[];
}

export const DEFAULT_LOCAL_MODEL = 'Xenova/bge-small-en-v1.5';

export interface LocalEmbedderOptions {
  /** A folder in the transformers.js layout; when set, nothing is downloaded and no network is used. */
  modelPath?: string;
  /** Hugging Face model id, downloaded once into `cacheDir` (ignored when `modelPath` is set). */
  model?: string;
  cacheDir?: string;
  /** Hub host (HF_ENDPOINT); files are fetched from `<remoteHost>/<model>/resolve/<revision>/<file>`. */
  remoteHost?: string;
  revision?: string;
  batchSize?: number;
  /** ONNX Runtime intra-op threads; defaults to the machine's parallelism. */
  threads?: number;
  /**
   * Whether idle intra-op threads busy-wait for the next task (ONNX Runtime's default) instead of
   * sleeping. Off by default: on a small shared CPU the spinning threads burn the time slices that
   * the rest of a sync (and whatever else runs there) needs; with 2 threads on 2 busy cores the
   * model alone ran 1.5-2× faster without it.
   */
  spinning?: boolean;
  /** ONNX weights variant: 'fp32' → onnx/model.onnx, 'q8' → onnx/model_quantized.onnx, … */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'bnb4' | 'q4f16';
  /** Overrides of the known-model table. */
  pooling?: Pooling;
  queryPrefix?: string;
  documentPrefix?: string;
  maxTokens?: number;
}

/**
 * transformers.js keeps its hub/cache settings in one global `env`; loads are serialised so two
 * embedders created concurrently (e.g. an offline folder and a hub download) never see each other's settings.
 */
let loadChain: Promise<unknown> = Promise.resolve();
function serialised<T>(fn: () => Promise<T>): Promise<T> {
  const run = loadChain.then(fn, fn);
  loadChain = run.catch(() => undefined);
  return run;
}

type EnvSnapshot = Pick<typeof env,
  'allowRemoteModels' | 'allowLocalModels' | 'remoteHost' | 'remotePathTemplate' | 'cacheDir' | 'useFSCache' | 'useBrowserCache' | 'logLevel'>;

function withEnv<T>(settings: Partial<EnvSnapshot>, fn: () => Promise<T>): Promise<T> {
  return serialised(async () => {
    const keys = Object.keys(settings) as Array<keyof EnvSnapshot>;
    const saved: Partial<Record<keyof EnvSnapshot, unknown>> = {};
    for (const k of keys) saved[k] = env[k];
    Object.assign(env, settings);
    try {
      return await fn();
    } finally {
      Object.assign(env, saved);
    }
  });
}

interface ModelConfigLike {
  max_position_embeddings?: number;
  hidden_size?: number;
}

export class LocalEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimension: number;
  readonly maxTokens: number;
  readonly conventions: ModelConventions;
  readonly batchesAcrossCalls = true;
  private readonly tokenizer: PreTrainedTokenizer;
  private readonly model: InferenceWorker;
  private readonly batchSize: number;
  /**
   * Document texts waiting for the model, from every embed() call at once (see batch-pool.ts).
   * One inference at a time: ONNX Runtime already uses every configured thread for a single run.
   */
  private readonly waiting: BatchPool<WaitingText>;
  /** The loop that runs inferences while anything waits; undefined when idle. */
  private draining?: Promise<void>;
  private closed = false;
  private specialTokens?: number;
  /** Ids from cached per-word ids, when this tokenizer is shown to allow it (see segmented-encoder.ts). */
  private segmented?: SegmentedEncoder;
  private readonly wordCounts = new Map<string, number>();
  /** Document text as embedded (prefix included) → its encode() ids, from countTokens; taken by the batch that embeds it. */
  private readonly encodings = new Map<string, number[]>();
  private readonly pendingQueries: { text: string; resolve: (v: number[]) => void; reject: (err: unknown) => void }[] = [];

  private constructor(args: {
    modelId: string; dimension: number; maxTokens: number; conventions: ModelConventions;
    tokenizer: PreTrainedTokenizer; model: InferenceWorker; batchSize: number;
  }) {
    this.modelId = args.modelId;
    this.dimension = args.dimension;
    this.maxTokens = args.maxTokens;
    this.conventions = args.conventions;
    this.tokenizer = args.tokenizer;
    this.model = args.model;
    this.batchSize = args.batchSize;
    this.waiting = new BatchPool({ batchSize: args.batchSize, maxPassed: MAX_PASSED });
  }

  /**
   * Loads the tokenizer here (so `countTokens` can be synchronous) and the weights on the
   * inference thread, both up front.
   */
  static async create(opts: LocalEmbedderOptions): Promise<LocalEmbedder> {
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    const pretrained = {
      dtype: opts.dtype ?? 'fp32',
      device: 'cpu' as const,
      session_options: {
        intraOpNumThreads: threads, interOpNumThreads: 1,
        extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
      },
    };
    let id: string;
    let options: Record<string, unknown>;
    let settings: Partial<EnvSnapshot>;
    let name: string;
    let conventions: ModelConventions;
    let loadError: (err: unknown) => Error;

    if (opts.modelPath) {
      const dir = path.resolve(opts.modelPath);
      for (const f of ['config.json', 'tokenizer.json']) {
        if (!fs.existsSync(path.join(dir, f))) {
          throw new Error(`LOCAL_MODEL_PATH ${dir} is not a transformers.js model folder: ${f} is missing`);
        }
      }
      name = path.basename(dir);
      conventions = { ...conventionsFor(name), ...readSentenceTransformersPooling(dir) };
      // An absolute path is not a valid hub id, so transformers.js reads it straight from disk;
      // local_files_only plus allowRemoteModels=false make any attempt to go remote an error instead.
      id = dir;
      options = { ...pretrained, local_files_only: true };
      settings = { allowRemoteModels: false, allowLocalModels: true, useFSCache: false, useBrowserCache: false, logLevel: LogLevel.ERROR };
      loadError = (err) => new Error(`Could not load the model in ${dir}: ${errorMessage(err)}`, { cause: err });
    } else {
      name = opts.model ?? DEFAULT_LOCAL_MODEL;
      if (!opts.cacheDir) throw new Error('LocalEmbedder needs cacheDir to download a model');
      const cacheDir = path.resolve(opts.cacheDir);
      fs.mkdirSync(cacheDir, { recursive: true });
      conventions = conventionsFor(name);
      // Local lookup is disabled so only the cache or the hub can answer; the cache is consulted
      // before any request, so a completed download is reused with no network access.
      id = name;
      options = { ...pretrained, cache_dir: cacheDir, revision: opts.revision ?? 'main' };
      settings = {
        allowRemoteModels: true, allowLocalModels: false, useFSCache: true, useBrowserCache: false,
        cacheDir, remoteHost: ensureSlash(opts.remoteHost ?? 'https://huggingface.co/'),
        remotePathTemplate: '{model}/resolve/{revision}/', logLevel: LogLevel.ERROR,
      };
      loadError = (err) => {
        const notFound = err instanceof ModelFileNotFoundError || (err instanceof WorkerLoadError && err.notFound);
        const status = err instanceof ModelFileNotFoundError || err instanceof WorkerLoadError ? err.status : undefined;
        return new UpstreamError(
          `Could not load embedding model ${name} from ${opts.remoteHost ?? 'https://huggingface.co/'} (cache ${cacheDir}): ${errorMessage(err)}. ` +
          'Without network access, set LOCAL_MODEL_PATH to a model folder (config.json, tokenizer.json, onnx/model.onnx) ' +
          'or HF_ENDPOINT to a reachable Hugging Face mirror, or run `npx clearance model` once where the hub is reachable',
          { retryable: !notFound && isTransient(err), status: notFound ? status ?? 404 : undefined, cause: err },
        );
      };
    }

    const loaded = await withEnv(settings, () => loadTokenizer(id, options)).catch((err) => { throw loadError(err); });
    conventions = {
      pooling: opts.pooling ?? conventions.pooling,
      queryPrefix: opts.queryPrefix ?? conventions.queryPrefix,
      documentPrefix: opts.documentPrefix ?? conventions.documentPrefix,
    };
    const config = loaded.config as unknown as ModelConfigLike;
    const maxTokens = opts.maxTokens ?? inferMaxTokens(loaded.tokenizer.model_max_length, config.max_position_embeddings);
    const model = await InferenceWorker.start({ id, options, settings, pooling: conventions.pooling, maxTokens })
      .catch((err) => { throw loadError(err); });
    const partial = new LocalEmbedder({
      modelId: `local:${name}`, dimension: 0, maxTokens, conventions,
      tokenizer: loaded.tokenizer, model, batchSize: opts.batchSize ?? 32,
    });
    partial.specialTokens = partial.calibrateSpecialTokens();
    partial.segmented = SegmentedEncoder.forTokenizer({ encode: (t, special) => loaded.tokenizer.encode(t, { add_special_tokens: special }) });
    try {
      // The width of what the model actually returns is the truth (hidden_size misses projection heads).
      const [probe] = await partial.infer(['dimension probe']);
      (partial as { dimension: number }).dimension = probe.length;
    } catch (err) {
      await model.close().catch(() => undefined);
      throw new Error(`Embedding model ${name} loaded but cannot run: ${errorMessage(err)}`, { cause: err });
    }
    return partial;
  }

  countTokens(text: string): number {
    // The chunker sizes text word by word; words recur across documents, so their counts are kept.
    if (text.length > WORD_CACHE_MAX_CHARS) return this.tokenCount(text);
    let n = this.wordCounts.get(text);
    if (n === undefined) {
      n = this.tokenCount(text);
      if (this.wordCounts.size >= WORD_CACHE_ENTRIES) this.wordCounts.clear();
      this.wordCounts.set(text, n);
    }
    return n;
  }

  private tokenCount(text: string): number {
    const t = this.conventions.documentPrefix + text;
    // Measured already (the chunker measures each chunk; the sync then sorts its batches by length).
    const kept = this.encodings.get(t);
    if (kept) return kept.length;
    if (this.model.acceptsIds && text.length > WORD_CACHE_MAX_CHARS) {
      // A passage the chunker measures is embedded soon after exactly as measured, so its ids are
      // kept and the inference thread does not tokenize it again (with this model's tokenizer that
      // is about a tenth of an embedding's cost). encode() costs about what tokenize() does here.
      const ids = this.segmented ? this.segmented.encode(t) : this.tokenizer.encode(t);
      if (ids.length <= this.maxTokens) {
        if (this.encodings.size >= ENCODING_CACHE_ENTRIES) this.encodings.delete(this.encodings.keys().next().value!);
        this.encodings.set(t, ids);
      }
      return ids.length;
    }
    // tokenize() skips building ids and masks (about 2.5× faster, and the chunker calls this a lot);
    // special tokens are a constant per sequence, checked against encode() at load.
    if (this.segmented && text.length > WORD_CACHE_MAX_CHARS) return this.segmented.encode(t).length;
    return this.specialTokens === undefined ? this.tokenizer.encode(t).length : this.tokenizer.tokenize(t).length + this.specialTokens;
  }

  /** The number of tokens encode() adds around a sequence, if it is the same for every sample; else undefined. */
  private calibrateSpecialTokens(): number | undefined {
    const samples = ['', 'a', 'Hello, world!', 'Ünïcödé — 東京 🙂', ' leading and trailing spaces ', 'x'.repeat(300)];
    const diffs = new Set(samples.map((t) => this.tokenizer.encode(t).length - this.tokenizer.tokenize(t).length));
    return diffs.size === 1 ? [...diffs][0] : undefined;
  }

  /**
   * Embeds document texts. They join whatever else waits for the model and are batched with texts
   * of similar length from every call (see batch-pool.ts); results come back in input order.
   */
  embed(texts: string[]): Promise<number[][]> {
    if (this.closed) return Promise.reject(new Error('LocalEmbedder is closed'));
    if (texts.length === 0) return Promise.resolve([]);
    return new Promise<number[][]>((resolve, reject) => {
      const call: EmbedCall = { vectors: new Array(texts.length), left: texts.length, failed: false, resolve, reject };
      texts.forEach((text, index) => {
        const t = this.conventions.documentPrefix + text;
        const { ids, length } = this.measure(t);
        this.waiting.add({ call, index, text: t, ids }, length);
      });
      this.drain();
    });
  }

  /**
   * Queries that arrive while an inference is running wait for the next one together: many
   * assistants searching at once cost a few batched inferences instead of one each, which is what
   * lets throughput grow with concurrency on a small CPU. They go before waiting document texts,
   * so a search during a sync waits for one batch at most.
   */
  embedQuery(text: string): Promise<number[]> {
    if (this.closed) return Promise.reject(new Error('LocalEmbedder is closed'));
    return new Promise<number[]>((resolve, reject) => {
      this.pendingQueries.push({ text: this.conventions.queryPrefix + text, resolve, reject });
      this.drain();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.draining;
    await this.model.close();
  }

  /** Runs inferences, one at a time, until nothing waits. */
  private drain(): void {
    if (this.draining) return;
    this.draining = (async () => {
      // Calls made together (a page's batches, concurrent queries) are all waiting before the first batch is formed.
      await null;
      for (;;) {
        if (this.pendingQueries.length > 0) {
          const batch = this.pendingQueries.splice(0, this.batchSize);
          try {
            const vectors = await this.infer(batch.map((q) => q.text));
            batch.forEach((q, i) => q.resolve(vectors[i]!));
          } catch (err) {
            for (const q of batch) q.reject(err);
          }
          continue;
        }
        const batch = this.waiting.take();
        if (batch.length === 0) return;
        await this.runDocuments(batch);
      }
    })().finally(() => {
      this.draining = undefined;
      // Work that arrived as the loop was ending.
      if (this.pendingQueries.length > 0 || this.waiting.size > 0) this.drain();
    });
  }

  private async runDocuments(batch: WaitingText[]): Promise<void> {
    const live = batch.filter((w) => !w.call.failed);
    if (live.length === 0) return;
    let vectors: number[][];
    try {
      vectors = await this.runTexts(live);
    } catch (err) {
      const calls = new Set(live.map((w) => w.call));
      for (const call of calls) {
        call.failed = true;
        call.reject(err);
      }
      // A failed call's other texts are not worth an inference.
      this.waiting.remove((w) => w.call.failed);
      return;
    }
    live.forEach((w, j) => {
      w.call.vectors[w.index] = vectors[j]!;
      if (--w.call.left === 0) w.call.resolve(w.call.vectors);
    });
  }

  /** From ids tokenized on this thread if every text has them, else the inference thread tokenizes. */
  private runTexts(batch: WaitingText[]): Promise<number[][]> {
    if (!batch.every((w) => w.ids)) return this.infer(batch.map((w) => w.text));
    const lengths = Int32Array.from(batch, (w) => w.ids!.length);
    const ids = new Int32Array(lengths.reduce((n, l) => n + l, 0));
    let o = 0;
    for (const w of batch) {
      ids.set(w.ids!, o);
      o += w.ids!.length;
    }
    return this.model.runIds(ids, lengths);
  }

  /**
   * A text's ids as embedded (prefix included): the ones countTokens kept, else encoded now (so the
   * inference thread does not tokenize it again); none without id input or past maxTokens (the
   * inference thread truncates those). Its length for batching is in tokens: by characters, a
   * batch's longest sequence was ~8 % longer on average (109k padded tokens against 101k on 300
   * generated documents); characters only stand in when the model takes no ids.
   */
  private measure(t: string): { ids?: number[]; length: number } {
    const kept = this.encodings.get(t);
    if (kept) {
      this.encodings.delete(t);
      return { ids: kept, length: kept.length };
    }
    if (!this.model.acceptsIds) return { length: t.length };
    const ids = this.segmented ? this.segmented.encode(t) : this.tokenizer.encode(t);
    return ids.length <= this.maxTokens ? { ids, length: ids.length } : { length: this.maxTokens };
  }

  /**
   * Drops the token ids kept from countTokens, for texts that were measured but will not be embedded
   * (or, in a benchmark, to time the embedder tokenizing on its own).
   */
  forgetEncodings(): void {
    this.encodings.clear();
  }

  /** One inference that tokenizes on the worker; only drain() and create() call it, so one runs at a time. */
  private infer(texts: string[]): Promise<number[][]> {
    return this.model.run(texts);
  }
}

/** What this thread needs: the tokenizer (for `countTokens`) and the config (for the token limit). */
async function loadTokenizer(id: string, options: Record<string, unknown>) {
  // config.json first: a missing model then fails with ModelFileNotFoundError rather than whatever
  // the tokenizer loader trips over when its files are absent.
  const config = await AutoConfig.from_pretrained(id, options);
  const tokenizer = await AutoTokenizer.from_pretrained(id, options);
  return { tokenizer, config };
}

/** Network failures, timeouts and 5xx/429 from the hub are worth retrying; anything else is not. */
function isTransient(err: unknown): boolean {
  const msg = errorMessage(err);
  if (/fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up/i.test(msg)) return true;
  const status = /\((\d{3})\)/.exec(msg)?.[1] ?? /^(Internal server|Service unavailable|Bad gateway|Gateway timeout|Request timeout)/i.exec(msg)?.[0];
  return status !== undefined && (!/^\d+$/.test(status) || Number(status) >= 500 || status === '429' || status === '408');
}

/** sentence-transformers folders say how they pool in 1_Pooling/config.json; trust it over the name table. */
function readSentenceTransformersPooling(dir: string): Partial<ModelConventions> {
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, '1_Pooling', 'config.json'), 'utf8')) as Record<string, unknown>;
    if (cfg.pooling_mode_cls_token === true) return { pooling: 'cls' };
    if (cfg.pooling_mode_mean_tokens === true) return { pooling: 'mean' };
  } catch {
    // absent or unreadable: fall back to the table
  }
  return {};
}

function inferMaxTokens(modelMaxLength: number | undefined, maxPositions: number | undefined): number {
  // Tokenizers without a limit report Infinity or 1e30; RoBERTa-style configs report 514 for 512 usable.
  const sane = [modelMaxLength, maxPositions].filter((n): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0 && n < 1e6);
  return sane.length ? Math.min(...sane) : 512;
}

function ensureSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

import { Worker } from 'node:worker_threads';
import type { Pooling } from './local.ts';

/** A model load that failed inside the worker, with what the caller needs to classify it. */
export class WorkerLoadError extends Error {
  readonly notFound: boolean;
  readonly status: number | undefined;
  constructor(e: RemoteError) {
    super(e.message);
    this.name = 'WorkerLoadError';
    this.notFound = e.notFound;
    this.status = e.status;
  }
}

interface RemoteError { message: string; notFound: boolean; status?: number }

type Message =
  | { type: 'ready'; acceptsIds: boolean }
  | { type: 'failed'; error: RemoteError }
  | { type: 'vectors'; id: number; data: Float64Array; dimension: number }
  | { type: 'error'; id: number; error: RemoteError };

export interface InferenceWorkerInit {
  /** Model folder or hub id, with transformers.js's pretrained options and `env` settings. */
  id: string;
  options: Record<string, unknown>;
  settings: Record<string, unknown>;
  pooling: Pooling;
  maxTokens: number;
}

/**
 * The model's ONNX session on its own thread (local-worker.mjs): inference no longer blocks this
 * thread's event loop, so a sync's other stages run while a batch is embedded. The handle keeps
 * the process alive only while an inference is outstanding.
 */
export class InferenceWorker {
  private readonly pending = new Map<number, { resolve: (v: number[][]) => void; reject: (err: unknown) => void }>();
  private nextId = 0;
  private dead: Error | undefined;

  /**
   * Whether `runIds` may be used: the worker checked at load that inputs built from `encode()` ids
   * equal what its tokenizer produces for the same texts.
   */
  readonly acceptsIds: boolean;

  private constructor(private readonly worker: Worker, acceptsIds: boolean) {
    this.acceptsIds = acceptsIds;
    worker.on('message', (m: Message) => {
      if (m.type !== 'vectors' && m.type !== 'error') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.type === 'error') p.reject(new Error(m.error.message));
      else p.resolve(rows(m.data, m.dimension));
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`embedding worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => fail(new Error(`embedding worker exited (code ${code})`)));
  }

  static start(init: InferenceWorkerInit): Promise<InferenceWorker> {
    const worker = new Worker(new URL('./local-worker.mjs', import.meta.url), { workerData: init });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`embedding worker exited (code ${code}) while loading ${init.id}`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: Message) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (m.type === 'ready') {
          worker.unref();
          resolve(new InferenceWorker(worker, m.acceptsIds));
        } else {
          void worker.terminate();
          reject(m.type === 'failed' ? new WorkerLoadError(m.error) : new Error(`embedding worker: unexpected ${m.type}`));
        }
      });
    });
  }

  /** Tokenizes, runs and pools one batch: a unit vector per text, in order. */
  run(texts: string[]): Promise<number[][]> {
    return this.send({ type: 'run', texts });
  }

  /**
   * Runs and pools one batch given as `encode()` token ids (each sequence at most the model's
   * limit; `ids` holds them one after another, `lengths` says where each ends). Only when `acceptsIds`.
   */
  runIds(ids: Int32Array<ArrayBuffer>, lengths: Int32Array<ArrayBuffer>): Promise<number[][]> {
    return this.send({ type: 'runIds', ids, lengths }, [ids.buffer, lengths.buffer]);
  }

  private send(msg: { type: 'run'; texts: string[] } | { type: 'runIds'; ids: Int32Array; lengths: Int32Array }, transfer: ArrayBuffer[] = []): Promise<number[][]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  async close(): Promise<void> {
    if (this.dead) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref();
    this.worker.postMessage({ type: 'close' });
    // Disposing a session is quick; a worker stuck past that is stopped.
    const timer = setTimeout(() => void this.worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * One array per vector, filled by index: Array.from over a typed array goes through the iterator
 * protocol, a boxed number per element, and was the main thread's largest allocation in ingest.
 */
function rows(data: Float64Array, d: number): number[][] {
  const out: number[][] = [];
  for (let o = 0; o < data.length; o += d) {
    const row = new Array<number>(d);
    for (let i = 0; i < d; i++) row[i] = data[o + i]!;
    out.push(row);
  }
  return out;
}

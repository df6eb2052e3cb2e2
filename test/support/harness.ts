import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { requestContext, type RequestContext, type Services } from '../../src/context.ts';
import type { Embedder } from '../../src/embedder/interface.ts';
import type { AlertStore } from '../../src/freshness/ports.ts';
import { InProcessJobRunner } from '../../src/jobs/in-process.ts';
import type { SyncJob } from '../../src/jobs/interface.ts';
import { createSyncWork } from '../../src/jobs/policy.ts';
import type { MetadataStore } from '../../src/metadata/interface.ts';
import type { Caller, RunMode, RunStats } from '../../src/types.ts';
import type { VectorStore } from '../../src/vectorstore/interface.ts';
import { MemoryVectorStore } from '../../src/vectorstore/memory.ts';
import { FakeEmbedder } from '../fakes/embedder.ts';
import { createMemoryStores } from './stores.ts';

export const SHARED_MODEL = path.resolve(import.meta.dirname, '../../../shared/models/universal-sentence-encoder-lite');

export interface Harness extends Services {
  jobs: InProcessJobRunner;
  dir: string;
  cleanup(): Promise<void>;
}

/** Services on fakes and temp dirs: in-memory PGlite, in-memory vectors, a deterministic embedder. */
export async function createHarness(opts: {
  env?: Record<string, string>;
  stores?: { metadata: MetadataStore; alerts: AlertStore };
  vectors?: VectorStore;
  embedder?: Embedder;
} = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clearance-test-'));
  // Test corpora live in temp folders: that is where filesystem sources may point by default.
  const config: Config = loadConfig({ CLEARANCE_DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'silent', FILESYSTEM_ROOTS: os.tmpdir(), ...opts.env });
  const { metadata, alerts } = opts.stores ?? (await createMemoryStores());
  const embedder = opts.embedder ?? new FakeEmbedder({ dimension: 64, maxTokens: 128 });
  const vectors = opts.vectors ?? new MemoryVectorStore();
  await vectors.init(embedder.dimension);
  const log = pino({ level: 'silent' });
  const h = {
    config, metadata, alerts, vectors, embedder, dir, log,
    secretKey: randomBytes(32),
    now: () => new Date(),
  } as Harness;
  h.jobs = new InProcessJobRunner({ config, log, metadata });
  h.cleanup = async () => {
    await h.jobs.close();
    await vectors.close();
    if (!opts.stores) await metadata.close();
    await rm(dir, { recursive: true, force: true });
  };
  return h;
}

export function userCtx(services: Services, email: string, groups: string[] = []): RequestContext {
  const caller: Caller = { kind: 'user', email: email.toLowerCase(), groups, isAdmin: false, isCompliance: false };
  return requestContext(services, caller, randomBytes(4).toString('hex'));
}

export function adminCtx(services: Services): RequestContext {
  return requestContext(services, { kind: 'admin-token', email: null, groups: [], isAdmin: true, isCompliance: true }, 'admin');
}

/**
 * Runs one sync of a source in this process, the way a worker would (same policy: status
 * transitions, freshness after success), and returns the run as it then stands. By default one
 * attempt: a run the policy wants to retry comes back queued. `followRetries` plays the policy's
 * retries at once (no waiting) until the run succeeds or the policy gives up.
 */
export async function syncNow(s: Services, sourceId: string, mode?: RunMode, opts: { followRetries?: boolean } = {}): Promise<{ runId: string; status: string; stats: RunStats; warnings: string[]; error: string | null }> {
  const { run } = await s.metadata.runs.start(sourceId, mode ?? ((await s.metadata.sources.cursor(sourceId)) ? 'incremental' : 'full'));
  const work = createSyncWork(s);
  let job: SyncJob = { sourceId, runId: run.id, mode: mode ?? null, attempt: 0, throttled: 0 };
  for (;;) {
    const outcome = await work(job, { signal: new AbortController().signal });
    if (outcome.kind !== 'retry' || !opts.followRetries) break;
    job = outcome.job;
  }
  const done = (await s.metadata.runs.get(run.id))!;
  return { runId: done.id, status: done.status, stats: done.stats, warnings: done.warnings, error: done.error };
}

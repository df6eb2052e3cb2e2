import { mkdir } from 'node:fs/promises';
import type { Config } from './config.ts';
import { ConfigError } from './config.ts';
import type { Services } from './context.ts';
import { createEmbedder } from './embedder/index.ts';
import type { Embedder } from './embedder/interface.ts';
import { errorMessage } from './errors.ts';
import { registerFreshnessJobs } from './freshness/jobs.ts';
import { registerAuditRetention } from './governance/retention.ts';
import { createJobRunner } from './jobs/index.ts';
import { createSyncWork } from './jobs/policy.ts';
import { RENEWER_NAME, subscriptionManager } from './notifications/lifecycle.ts';
import { FilesystemWatchers } from './notifications/watch.ts';
import { createLogger } from './log.ts';
import { openStores } from './metadata/index.ts';
import { loadOrCreateSecretKey } from './metadata/secrets.ts';
import { createVectorStore } from './vectorstore/index.ts';

/**
 * Builds the long-lived services. Each store is checked here, so a bad URL or an unreachable
 * store stops start-up with one line naming the variable instead of failing on the first request.
 * `embedder` replaces the configured one (tests and benchmarks that bring their own).
 */
export async function createServices(config: Config, opts: { embedder?: Embedder } = {}): Promise<Services> {
  await mkdir(config.dataDir, { recursive: true });
  const log = createLogger(config.LOG_LEVEL);
  const { metadata, alerts } = await step('DATABASE_URL', () => openStores(config));
  const vectors = createVectorStore(config);
  const embedder = opts.embedder ?? await step(config.LOCAL_MODEL_PATH ? 'LOCAL_MODEL_PATH' : config.EMBEDDING_PROVIDER === 'openai' ? 'OPENAI_BASE_URL' : 'EMBEDDING_MODEL', () => createEmbedder(config));
  // init creates the collection/table and is the first call to reach the vector store.
  await step(config.QDRANT_URL ? 'QDRANT_URL' : 'CLEARANCE_DATA_DIR', () => vectors.init(embedder.dimension));
  const secretKey = await step('CLEARANCE_SECRET_KEY', () => loadOrCreateSecretKey(config));
  const jobs = await step('REDIS_URL', () => createJobRunner({ config, log, metadata }));
  return { config, metadata, alerts, vectors, embedder, log, secretKey, jobs, now: () => new Date() };
}

/**
 * Makes this process a worker: registers the repeatable jobs (freshness) and starts consuming
 * sync jobs with the one sync-job policy. `clearance serve` and `clearance worker` both call it.
 */
export async function startWorkers(services: Services): Promise<void> {
  await step('REDIS_URL', () => registerFreshnessJobs(services.jobs, services));
  await step('REDIS_URL', () => registerAuditRetention(services.jobs, services));
  // Subscriptions and channels are renewed by one worker at a time (a repeatable job).
  const manager = subscriptionManager(services);
  await services.jobs.registerRepeatable(RENEWER_NAME, services.config.NOTIFICATION_RENEW_SECONDS * 1000, () => manager.maintainAll());
  await services.jobs.startWorkers(createSyncWork(services));
  // PUBLIC_BASE_URL set (or changed) since the last start: subscribe now rather than at the first tick.
  void manager.maintainAll();
  const watchers = new FilesystemWatchers(services);
  await watchers.start();
  workerExtras.set(services, watchers);
}

/** Per-process helpers started with the workers and stopped with the services. */
const workerExtras = new WeakMap<Services, FilesystemWatchers>();

/** The folder watchers this process runs (null when it runs no workers). */
export const filesystemWatchers = (s: Services): FilesystemWatchers | null => workerExtras.get(s) ?? null;

async function step<T>(variable: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const msg = errorMessage(err).split('\n')[0];
    throw new ConfigError(msg.includes(variable) ? msg : `${variable}: ${msg}`);
  }
}

export async function closeServices(s: Services) {
  workerExtras.get(s)?.close();
  await s.jobs.close();
  await Promise.allSettled([s.vectors.close(), s.embedder.close?.(), s.metadata.close()]);
}

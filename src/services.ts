import { mkdir } from 'node:fs/promises';
import type { Config } from './config.ts';
import { ConfigError } from './config.ts';
import type { Services } from './context.ts';
import { createEmbedder } from './embedder/index.ts';
import { errorMessage } from './errors.ts';
import { registerFreshnessJobs } from './freshness/jobs.ts';
import { InProcessJobRunner } from './jobs/in-process.ts';
import type { JobRunner } from './jobs/interface.ts';
import { createLogger } from './log.ts';
import { createMetadataStore } from './metadata/index.ts';
import { loadOrCreateSecretKey } from './metadata/secrets.ts';
import { createVectorStore } from './vectorstore/index.ts';

/**
 * Builds the long-lived services. Each store is checked here, so a bad URL or an unreachable
 * store stops start-up with one line naming the variable instead of failing on the first request.
 */
export async function createServices(config: Config, opts: { jobs?: (ctx: () => Services) => Promise<JobRunner> | JobRunner } = {}): Promise<Services> {
  await mkdir(config.dataDir, { recursive: true });
  const log = createLogger(config.LOG_LEVEL);
  const metadata = await step('DATABASE_URL', () => createMetadataStore(config));
  const vectors = createVectorStore(config);
  const embedder = await step(config.LOCAL_MODEL_PATH ? 'LOCAL_MODEL_PATH' : config.EMBEDDING_PROVIDER === 'openai' ? 'OPENAI_BASE_URL' : 'EMBEDDING_MODEL', () => createEmbedder(config));
  // init creates the collection/table and is the first call to reach the vector store.
  await step(config.QDRANT_URL ? 'QDRANT_URL' : 'CLEARANCE_DATA_DIR', () => vectors.init(embedder.dimension));
  const secretKey = await step('CLEARANCE_SECRET_KEY', () => loadOrCreateSecretKey(config));
  const services = { config, metadata, vectors, embedder, log, secretKey, now: () => new Date() } as Services;
  const getServices = () => services;
  services.jobs = opts.jobs ? await opts.jobs(getServices) : config.REDIS_URL
    ? await step('REDIS_URL', async () => {
        const { BullMqJobRunner } = await import('../workers/bullmq.ts');
        const runner = new BullMqJobRunner(getServices);
        await runner.ping();
        return runner;
      })
    : new InProcessJobRunner(getServices);
  // Every process registers the freshness handlers; only those that start workers run them.
  await step('REDIS_URL', () => registerFreshnessJobs(services.jobs));
  return services;
}

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
  await s.jobs.close();
  await Promise.allSettled([s.vectors.close(), s.embedder.close?.(), s.metadata.close()]);
}

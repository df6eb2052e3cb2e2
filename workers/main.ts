import { ConfigError, loadConfig } from '../src/config.ts';
import type { Services } from '../src/context.ts';
import { errorMessage } from '../src/errors.ts';
import { closeServices, createServices, startWorkers } from '../src/services.ts';
import { startTracing, tracesUrl } from '../src/telemetry/tracing.ts';
import { startHeartbeat } from './health.ts';

/**
 * The worker process: what `clearance worker` runs in production (sync and freshness jobs, no
 * HTTP API), sharing REDIS_URL with the API processes. SIGTERM/SIGINT let each running sync finish
 * its current page and hand the run back to the queue, then the process exits 0; a second signal
 * exits at once.
 */
export async function startWorkerProcess(env: Record<string, string | undefined> = process.env): Promise<Services> {
  const config = loadConfig(env);
  const tracing = await startTracing(config);
  const services = await createServices(config);
  if (tracing.enabled) services.log.info({ endpoint: tracesUrl(config), service: config.OTEL_SERVICE_NAME }, 'exporting traces over OTLP/HTTP');
  if (services.jobs.kind === 'in-process') {
    services.log.warn('REDIS_URL is not set: this worker only runs syncs that this process itself enqueues');
  }
  await startWorkers(services);
  const stopHeartbeat = startHeartbeat(services);
  services.log.info({ jobs: services.jobs.kind, vectors: services.vectors.kind, metadata: services.metadata.kind, model: services.embedder.modelId }, 'Clearance worker started');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    stopHeartbeat();
    services.log.info({ signal }, 'shutting down: finishing the current page of each running sync');
    // Flushes the spans of the syncs just handed back before the process goes.
    closeServices(services).then(() => tracing.shutdown()).then(() => process.exit(0), (err) => {
      services.log.error({ err: errorMessage(err) }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return services;
}

/** Entry point for `clearance worker`: a configuration error is one line, never a stack trace. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  try {
    await startWorkerProcess(env);
  } catch (err) {
    process.stderr.write(`clearance: ${err instanceof ConfigError ? err.message : errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? 78 : 1);
  }
}

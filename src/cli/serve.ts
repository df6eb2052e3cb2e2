import { createApp } from '../api/app.ts';
import { listen } from '../api/server.ts';
import { loadConfig } from '../config.ts';
import { createAuthenticator } from '../identity/index.ts';
import { closeServices, createServices, startWorkers } from '../services.ts';

/** `clearance serve` (API and workers in one process) and `clearance api` (the API alone). */
export async function serve(opts: { api: boolean; workers: boolean }) {
  const config = loadConfig();
  const services = await createServices(config);
  const { log } = services;
  if (opts.api && !opts.workers && services.jobs.kind === 'in-process') {
    log.warn('REDIS_URL is not set: this API process runs the sync jobs itself');
    opts.workers = true;
  }
  if (opts.workers) await startWorkers(services);
  let server: Awaited<ReturnType<typeof listen>> | undefined;
  if (opts.api) {
    const app = createApp(services, createAuthenticator(config));
    server = await listen(app, { port: config.PORT, hostname: config.HOST });
    log.info({ port: server.port, jobs: services.jobs.kind, vectors: services.vectors.kind, metadata: services.metadata.kind, model: services.embedder.modelId }, 'Clearance is listening');
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing the current page of each running sync');
    await server?.close();
    await closeServices(services);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return services;
}

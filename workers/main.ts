import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig } from '../src/config.ts';
import type { Services } from '../src/context.ts';
import { errorMessage } from '../src/errors.ts';
import { closeServices, createServices } from '../src/services.ts';

/**
 * A standalone sync worker: `tsx workers/main.ts` (what `npx clearance worker` also amounts to).
 * SIGTERM/SIGINT let each running sync finish its current page and hand the run back to the queue,
 * then the process exits 0; a second signal exits at once.
 */
export async function startWorker(env: Record<string, string | undefined> = process.env): Promise<Services> {
  const config = loadConfig(env);
  const services = await createServices(config);
  await services.jobs.startWorkers();
  services.log.info({ jobs: services.jobs.kind, vectors: services.vectors.kind, metadata: services.metadata.driver.kind }, 'Clearance worker started');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    services.log.info({ signal }, 'shutting down: finishing the current page of each running sync');
    closeServices(services).then(() => process.exit(0), (err) => {
      services.log.error({ err: errorMessage(err) }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return services;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  startWorker().catch((err) => {
    process.stderr.write(`clearance worker: ${err instanceof ConfigError ? err.message : errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? 78 : 1);
  });
}

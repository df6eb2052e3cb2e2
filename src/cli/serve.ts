import { createApp } from '../api/app.ts';
import { tuneHeapForSearch } from '../api/heap.ts';
import { listen } from '../api/server.ts';
import { loadConfig, type Config } from '../config.ts';
import { createAuthenticator } from '../identity/index.ts';
import { errorMessage } from '../errors.ts';
import { closeServices, createServices, startWorkers } from '../services.ts';
import { startTracing, tracesUrl } from '../telemetry/tracing.ts';

/** `clearance serve` (API and workers in one process) and `clearance api` (the API alone). */
export async function serve(opts: { api: boolean; workers: boolean }) {
  const config = loadConfig();
  // Loud on purpose, and before the slow start-up: a service nobody can call looks healthy from outside.
  const authProblem = opts.api ? whoCannotAuthenticate(config) : null;
  if (authProblem) process.stderr.write(`\n  WARNING: ${authProblem}\n\n`);
  // Full collections pause the thread that answers every search (why: src/api/heap.ts).
  if (opts.api) tuneHeapForSearch();
  // Before anything that could make a span, so the first request is traced too.
  const tracing = await startTracing(config);
  const services = await createServices(config);
  const { log } = services;
  if (tracing.enabled) log.info({ endpoint: tracesUrl(config), service: config.OTEL_SERVICE_NAME }, 'exporting traces over OTLP/HTTP');
  if (authProblem) log.warn(authProblem);
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
    // The spans of the last requests and of the syncs just stopped are still buffered.
    await tracing.shutdown().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not flush traces'));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return services;
}

/**
 * Who cannot get in with this configuration, or null when users and admins both can. Without an
 * identity provider (and not in dev mode) no user token is accepted; without ADMIN_TOKEN as well,
 * nobody at all can call the API.
 */
export function whoCannotAuthenticate(config: Pick<Config, 'AUTH_MODE' | 'OIDC_ISSUER' | 'ADMIN_TOKEN' | 'ADMIN_GROUP'>): string | null {
  if (config.AUTH_MODE === 'dev' || config.OIDC_ISSUER) {
    if (config.ADMIN_TOKEN || config.ADMIN_GROUP || config.AUTH_MODE === 'dev') return null;
    return 'no one can act as an admin: set ADMIN_TOKEN or ADMIN_GROUP to add sources';
  }
  if (!config.ADMIN_TOKEN) {
    return 'no one can authenticate: OIDC_ISSUER and ADMIN_TOKEN are unset and AUTH_MODE is not dev. ' +
      'Set OIDC_ISSUER and OIDC_AUDIENCE for users, ADMIN_TOKEN for an admin, or AUTH_MODE=dev for local use (clearance token)';
  }
  return 'only ADMIN_TOKEN can authenticate: OIDC_ISSUER is unset, so no user can search. Set OIDC_ISSUER and OIDC_AUDIENCE (or AUTH_MODE=dev for local use)';
}

import type pino from 'pino';
import type { Config } from './config.ts';
import type { Embedder } from './embedder/interface.ts';
import type { AlertStore } from './freshness/ports.ts';
import type { JobRunner } from './jobs/interface.ts';
import type { MetadataStore } from './metadata/interface.ts';
import type { Caller } from './types.ts';
import type { VectorStore } from './vectorstore/interface.ts';

/** Long-lived things built once at start-up and shared by every request and job. */
export interface Services {
  config: Config;
  metadata: MetadataStore;
  /** Freshness alerts, their history and notification outbox. */
  alerts: AlertStore;
  vectors: VectorStore;
  embedder: Embedder;
  log: pino.Logger;
  /** Key that encrypts source credentials at rest. */
  secretKey: Buffer;
  jobs: JobRunner;
  /** Injectable clock so freshness and schedules can be tested. */
  now: () => Date;
}

/**
 * Built per HTTP request: services plus who is calling. Service functions take `({ ctx, input })`.
 * `log` is the request's child logger, so everything logged on its behalf carries the request id.
 */
export interface RequestContext extends Services {
  caller: Caller;
  requestId: string;
}

/** The per-request context: the caller, the request id, and a logger that carries it. */
export function requestContext(services: Services, caller: Caller, requestId: string): RequestContext {
  return { ...services, log: services.log.child({ requestId }), caller, requestId };
}

import { setTimeout as sleep } from 'node:timers/promises';
import {
  createV1Client, createV2Client, isApiError, isAuthError, isNetworkError, isRateLimitError, isSchemaMismatchError,
  type ClientConfig,
} from 'confluence.js';
import { createClient, type Client } from 'confluence.js/core';
import { UpstreamError } from '../../errors.ts';
import { limiterFor, type TenantLimiter } from '../limiter.ts';
import { recordStatus, upstreamSpan } from '../../telemetry/tracing.ts';

/**
 * confluence.js does the HTTP (URLs from `host`, Basic `email:apiToken`, typed errors, response
 * validation); this module wraps its transport with what a sync worker needs and the library
 * deliberately leaves to the caller: bounded concurrency per site, a per-request timeout, retries
 * with jittered backoff for 429/5xx/network failures, and errors the job layer understands
 * (`UpstreamError` with `status`, `retryable`, `retryAfterSeconds`).
 *
 * What the library does not hand back: it throws a `RateLimitError` whose `retryAfterMs` comes from
 * `Retry-After`, but it keeps no other response header, so `X-RateLimit-Reset` (sent when
 * Retry-After is absent) and a 503's Retry-After are invisible here; those waits fall back to
 * exponential backoff, and a 429 without Retry-After waits at least `RATE_LIMIT_FLOOR_SECONDS`.
 * It also takes no AbortSignal, so a timed-out request is abandoned (not cancelled): its slot is
 * freed and undici's own header/body timeouts end the socket later.
 */

export interface ConfluenceTuning {
  /** Attempts per request for 429, 5xx, timeouts and network failures. */
  maxAttempts?: number;
  maxRetryAfterSeconds?: number;
  /** Base of the exponential backoff (ms) when the server gave no Retry-After. */
  backoffBaseMs?: number;
  signal?: AbortSignal;
}

/** One failed Confluence call, as the job layer reads it. */
export class ConfluenceError extends UpstreamError {
  constructor(message: string, opts: { retryable: boolean; status?: number; retryAfterSeconds?: number; cause?: unknown }) {
    super(message, opts);
    this.name = 'ConfluenceError';
  }
}

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** Atlassian asks for at least this much when it throttles without saying how long. */
const RATE_LIMIT_FLOOR_SECONDS = 2;

export interface TransportOptions {
  host: string;
  email: string;
  apiToken: string;
  maxConcurrency: number;
  timeoutMs: number;
  maxRetryAfterSeconds: number;
  tuning?: ConfluenceTuning;
}

export interface ConfluenceApi {
  v1: ReturnType<typeof createV1Client>;
  v2: ReturnType<typeof createV2Client>;
  limiter: TenantLimiter;
  /** Requests sent (every attempt counts), for tests and the benchmark. */
  readonly stats: { requests: number; retries: number };
}

export function createConfluenceApi(opts: TransportOptions): ConfluenceApi {
  const config: ClientConfig = { host: opts.host, auth: { type: 'basic', email: opts.email, apiToken: opts.apiToken } };
  const inner = createClient(config);
  const limiter = limiterFor(`confluence|${opts.host}`, opts.maxConcurrency);
  const maxAttempts = Math.max(1, opts.tuning?.maxAttempts ?? 5);
  const backoffBase = opts.tuning?.backoffBaseMs ?? 250;
  const signal = opts.tuning?.signal;
  const stats = { requests: 0, retries: 0 };

  const transport: Client = {
    async sendRequest<T>(request: Parameters<Client['sendRequest']>[0]): Promise<T> {
      const what = `${request.method ?? 'GET'} ${request.url}`;
      for (let attempt = 1; ; attempt++) {
        signal?.throwIfAborted();
        const release = await limiter.acquire(signal);
        let failure: ConfluenceError;
        try {
          stats.requests++;
          return await upstreamSpan(request.method ?? 'GET', siteUrl(opts.host, request.url), async (span) => {
            try {
              return (await withTimeout(inner.sendRequest(request), opts.timeoutMs, what)) as T;
            } catch (err) {
              // The library hands back only failures' statuses; a success is some 2xx.
              recordStatus(span, toConfluenceError(err, what).status);
              throw err;
            }
          });
        } catch (err) {
          failure = toConfluenceError(err, what);
        } finally {
          release();
        }
        const wait = failure.retryAfterSeconds;
        if (!failure.retryable || attempt >= maxAttempts) throw failure;
        // A long wait belongs to the job layer (it reschedules the run); a short one is slept here.
        if (wait !== undefined && wait > opts.maxRetryAfterSeconds) throw failure;
        stats.retries++;
        if (wait !== undefined) {
          // Everyone on this site waits, not just this request: Atlassian limits the whole account.
          limiter.pause(wait * (1 + Math.random() * 0.1));
        } else {
          await sleep(Math.min(8000, backoffBase * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2), undefined, { signal });
        }
      }
    },
  };
  return { v1: createV1Client(transport), v2: createV2Client(transport), limiter, stats };
}

/** The request's URL as confluence.js builds it (host + path), for the client span. */
function siteUrl(host: string, path: string): string {
  return `${host.replace(/\/+$/, '')}${path.startsWith('/') ? '' : '/'}${path}`;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfluenceError(`Confluence ${what} timed out after ${ms} ms`, { retryable: true })), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
    p.catch(() => undefined); // an abandoned request may still fail later; nobody is listening
  }
}

/** confluence.js errors → UpstreamError semantics (status, retryable, Retry-After in seconds). */
export function toConfluenceError(err: unknown, what: string): ConfluenceError {
  if (err instanceof ConfluenceError) return err;
  if (isRateLimitError(err)) {
    const retryAfterSeconds = err.retryAfterMs !== undefined ? Math.ceil(err.retryAfterMs / 1000) : RATE_LIMIT_FLOOR_SECONDS;
    return new ConfluenceError(`Confluence ${what} → 429 rate limited (retry after ${retryAfterSeconds} s)`, { retryable: true, status: 429, retryAfterSeconds, cause: err });
  }
  if (isApiError(err)) {
    const status = err.status;
    const detail = apiErrorDetail(err.body);
    const message = isAuthError(err)
      ? `Confluence rejected the credentials (HTTP 401${detail ? `: ${detail}` : ''}); check the account email and API token`
      : `Confluence ${what} → ${status}${detail ? `: ${detail}` : ''}`;
    return new ConfluenceError(message, { retryable: RETRYABLE_STATUS.has(status), status, cause: err });
  }
  if (isNetworkError(err)) {
    return new ConfluenceError(`Confluence ${what} failed: ${err.code ?? err.message}`, { retryable: err.transient, cause: err });
  }
  if (isSchemaMismatchError(err)) {
    return new ConfluenceError(`Confluence ${what} answered in an unexpected shape: ${err.message}`, { retryable: false, cause: err });
  }
  return new ConfluenceError(`Confluence ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { retryable: false, cause: err });
}

/** Atlassian error bodies: v1 `{message}`, v2 `{errors: [{title, detail}]}`; anything else is cut short. */
function apiErrorDetail(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; errors?: Array<{ title?: unknown; detail?: unknown }> };
    if (typeof b.message === 'string') return b.message.slice(0, 300);
    const first = Array.isArray(b.errors) ? b.errors[0] : undefined;
    if (first) return [first.title, first.detail].filter((x) => typeof x === 'string' && x).join(': ').slice(0, 300);
  }
  return typeof body === 'string' ? body.replace(/\s+/g, ' ').trim().slice(0, 200) : '';
}

/** HTTP status of an error from this module, if it came from an answer. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof UpstreamError ? err.status : undefined;
}

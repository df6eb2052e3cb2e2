import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, Middleware, MiddlewareOptions } from '@microsoft/microsoft-graph-client';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import type { TenantLimiter } from '../limiter.ts';
import { recordStatus, upstreamSpan } from '../../telemetry/tracing.ts';

export { TenantLimiter, limiterFor } from '../limiter.ts';

/**
 * The middleware every Microsoft request of this connector goes through — Graph calls (inside
 * @microsoft/microsoft-graph-client's chain), SharePoint REST calls and pre-authenticated
 * downloads (the same middleware run directly, the latter without the AuthenticationHandler):
 *
 *   ThrottleHandler → [AuthenticationHandler] → LimitedFetchHandler
 *
 * The SDK's own RetryHandler is not used: it sleeps through any Retry-After and, when it gives
 * up, hands back nothing the job layer can reschedule with; the SDK has no per-request timeout and
 * no shared per-tenant concurrency bound; and its RedirectHandler would follow the `/content`
 * redirect itself.
 */

export interface HttpTuning {
  /** Attempts per request for throttling, 5xx and network failures (401 gets one extra refresh). */
  maxAttempts?: number;
  /** A Retry-After longer than this is not slept through: the UpstreamError goes to the job layer. */
  maxRetryAfterSeconds?: number;
  downloadTimeoutMs?: number;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/**
 * Per-request settings, passed as an SDK middleware option (`.middlewareOptions([control])`) or on
 * the context of a directly run chain. The ThrottleHandler leaves the typed error it gave up with
 * here, because GraphRequest re-wraps anything thrown by the chain into its own GraphError.
 */
export class RequestControl implements MiddlewareOptions {
  error?: unknown;
  constructor(readonly opts: { timeoutMs?: number; maxBytes?: number } = {}) {}
}

export type PipelineContext = Context & { control?: RequestControl };

export function controlOf(ctx: PipelineContext): RequestControl | undefined {
  return ctx.control ?? (ctx.middlewareControl?.getMiddlewareOptions(RequestControl) as RequestControl | undefined);
}

export const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export interface ThrottleOptions {
  limiter: TenantLimiter;
  tuning: HttpTuning;
  /** Names the service in errors ("Graph", "SharePoint REST"). */
  service: string;
  /** Upstream said 401: drop the cached token so the retry gets a fresh one. */
  onUnauthorized?: () => void;
}

/**
 * Retries 429/5xx/network failures. With Retry-After the whole tenant pauses (the limiter makes
 * every request wait); a Retry-After beyond `maxRetryAfterSeconds`, or an exhausted budget, ends
 * the loop and the caller turns the last response into an UpstreamError carrying the wait.
 */
export class ThrottleHandler implements Middleware {
  private next!: Middleware;
  private readonly maxAttempts: number;
  private readonly maxRetryAfter: number;

  constructor(private readonly o: ThrottleOptions) {
    this.maxAttempts = Math.max(1, o.tuning.maxAttempts ?? 4);
    this.maxRetryAfter = o.tuning.maxRetryAfterSeconds ?? 60;
  }

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(ctx: PipelineContext): Promise<void> {
    const signal = this.o.tuning.signal;
    const control = controlOf(ctx);
    // The AuthenticationHandler appends its Authorization header; each attempt starts from the original.
    const headers = ctx.options?.headers;
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      ctx.response = undefined;
      if (ctx.options) ctx.options.headers = copyHeaders(headers);
      try {
        await this.next.execute(ctx);
      } catch (err) {
        if (signal?.aborted || err instanceof UpstreamError || attempt >= this.maxAttempts) {
          const typed = err instanceof UpstreamError || signal?.aborted
            ? err
            : new UpstreamError(`${this.o.service} GET ${shortPath(urlOf(ctx))} failed: ${describeFetchError(err)}`, { retryable: true, cause: err });
          if (control) control.error = typed;
          throw typed;
        }
        await this.backoff(attempt, undefined);
        continue;
      }
      const res = ctx.response as Response | undefined;
      if (!res) return;
      if (res.status === 401 && this.o.onUnauthorized && !refreshed) {
        // Expired or revoked between the token cache's check and the service's: one fresh token.
        refreshed = true;
        this.o.onUnauthorized();
        attempt--;
        continue;
      }
      if (!RETRYABLE_STATUS.has(res.status)) return;
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      if (retryAfter !== undefined) this.o.limiter.pause(Math.min(retryAfter, this.maxRetryAfter));
      if (attempt >= this.maxAttempts || (retryAfter !== undefined && retryAfter > this.maxRetryAfter)) return;
      await this.backoff(attempt, retryAfter);
    }
  }

  /** With a Retry-After the tenant pause already makes acquire() wait; otherwise exponential backoff. */
  private async backoff(attempt: number, retryAfter: number | undefined): Promise<void> {
    if (retryAfter !== undefined) return;
    const ms = Math.min(8000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
    await sleep(ms, undefined, { signal: this.o.tuning.signal });
  }
}

/**
 * The chain's end: one fetch inside a tenant concurrency slot, with a per-request timeout,
 * redirects never followed (a `/content` 302 points at a pre-authenticated URL that must not get
 * the bearer token), and the body read completely while the slot is held — a body still streaming
 * counts as in flight, and a size cap holds even when Content-Length lies.
 */
export class LimitedFetchHandler implements Middleware {
  private readonly doFetch: typeof fetch;

  constructor(private readonly limiter: TenantLimiter, private readonly timeoutMs: number, private readonly tuning: HttpTuning) {
    this.doFetch = tuning.fetch ?? fetch;
  }

  async execute(ctx: PipelineContext): Promise<void> {
    const control = controlOf(ctx);
    const url = urlOf(ctx);
    const signal = this.tuning.signal;
    const release = await this.limiter.acquire(signal);
    try {
      await upstreamSpan(ctx.options?.method ?? 'GET', url, async (span) => {
        const timeout = AbortSignal.timeout(control?.opts.timeoutMs ?? this.timeoutMs);
        const res = await this.doFetch(url, {
          ...(ctx.options as RequestInit | undefined),
          redirect: 'manual',
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        recordStatus(span, res.status);
        if (res.status >= 300 && res.status < 400) {
          await res.body?.cancel();
          ctx.response = new Response(null, { status: res.status, statusText: res.statusText, headers: res.headers });
          return;
        }
        const body = await readCapped(res, res.ok ? control?.opts.maxBytes : undefined, url);
        const empty = body.length === 0 && [204, 205].includes(res.status);
        ctx.response = new Response(empty ? null : new Uint8Array(body), { status: res.status, statusText: res.statusText, headers: res.headers });
      });
    } finally {
      release();
    }
  }
}

/** Links the middleware for running the chain directly (SharePoint REST, downloads). */
export function chain(...middleware: Middleware[]): Middleware {
  for (let i = 0; i < middleware.length - 1; i++) middleware[i]!.setNext?.(middleware[i + 1]!);
  return middleware[0]!;
}

/** Runs a GET through a directly linked chain; the response body is already buffered. */
export async function runChain(
  head: Middleware, url: string, headers: Record<string, string>, control: RequestControl, customHosts?: Set<string>,
): Promise<Response> {
  const ctx: PipelineContext = { request: url, options: { method: 'GET', headers }, control, customHosts };
  await head.execute(ctx);
  if (!ctx.response) throw new UpstreamError(`GET ${shortPath(url)} produced no response`, { retryable: true });
  return ctx.response;
}

async function readCapped(res: Response, maxBytes: number | undefined, url: string): Promise<Buffer> {
  const tooLarge = () =>
    new UpstreamError(`${shortPath(url)} is larger than the ${maxBytes}-byte limit (maxFileBytes)`, { retryable: false, status: res.status });
  const declared = Number(res.headers.get('content-length'));
  if (maxBytes !== undefined && Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (maxBytes !== undefined && total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

function copyHeaders(h: HeadersInit | undefined): HeadersInit | undefined {
  if (h === undefined) return undefined;
  if (h instanceof Headers) return new Headers(h);
  if (Array.isArray(h)) return h.map((pair) => [...pair] as [string, string]);
  return { ...h };
}

function urlOf(ctx: Context): string {
  return typeof ctx.request === 'string' ? ctx.request : ctx.request.url;
}

export function contentType(res: Response): string | null {
  return res.headers.get('content-type')?.split(';')[0]?.trim() || null;
}

/** Path only: query strings hold delta tokens and download signatures, which do not belong in logs. */
export function shortPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

export function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

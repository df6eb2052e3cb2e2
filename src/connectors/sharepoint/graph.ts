import { setTimeout as sleep } from 'node:timers/promises';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import type { TokenClient } from './auth.ts';

/**
 * A small fetch-based Microsoft Graph client.
 *
 * Why not @microsoft/microsoft-graph-client: its middleware chain retries 429/503 on its own
 * schedule and, once it gives up, does not hand the Retry-After back in a form the job layer can
 * use; it has no per-request timeout; it only attaches tokens to hosts it recognises (a configured
 * `graphBaseUrl` needs `customHosts`); and 302 download redirects must be followed WITHOUT the
 * bearer token (the Location is a pre-authenticated URL on another host). Those are exactly the
 * behaviours this connector must control, so it does the few GETs it needs directly.
 */

export interface GraphTuning {
  /** Attempts per request for throttling, 5xx and network failures (401 gets one extra refresh). */
  maxAttempts?: number;
  /** A Retry-After longer than this is not slept through: the UpstreamError goes to the job layer. */
  maxRetryAfterSeconds?: number;
  downloadTimeoutMs?: number;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** A Graph error answer, with Graph's error code (`itemNotFound`, `resyncChangesApplyDifferences`…). */
export class GraphError extends UpstreamError {
  readonly code: string | undefined;
  /** 410 on delta: Location of a fresh enumeration. */
  readonly location: string | undefined;
  constructor(message: string, opts: { retryable: boolean; status?: number; retryAfterSeconds?: number; code?: string; location?: string; cause?: unknown }) {
    super(message, opts);
    this.name = 'GraphError';
    this.code = opts.code;
    this.location = opts.location;
  }
}

/**
 * Requests in flight per tenant, shared by every connector instance in the process: Graph
 * throttles per app+tenant, so two sources on one tenant must not each assume they own the budget.
 * A 429/503 Retry-After pauses the whole tenant, not just the request that saw it.
 */
export class TenantLimiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private pausedUntil = 0;
  /** Highest number of requests seen in flight at once (tests and metrics). */
  maxActive = 0;

  constructor(readonly limit: number) {}

  pause(seconds: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + seconds * 1000);
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      const wait = this.pausedUntil - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal });
      if (this.active >= this.limit) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      // Another request may have been throttled while this one queued.
      if (this.pausedUntil > Date.now()) continue;
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.active--;
        this.waiters.shift()?.();
      };
    }
  }
}

const limiters = new Map<string, TenantLimiter>();
export function limiterFor(key: string, limit: number): TenantLimiter {
  const k = `${key}|${limit}`;
  let l = limiters.get(k);
  if (!l) limiters.set(k, (l = new TenantLimiter(limit)));
  return l;
}

export interface GraphPage<T> {
  value?: T[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

interface SendOptions {
  headers?: Record<string, string>;
  auth: boolean;
  timeoutMs: number;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

export class GraphClient {
  private readonly origin: string;
  private readonly doFetch: typeof fetch;
  private readonly maxAttempts: number;
  private readonly maxRetryAfter: number;

  constructor(
    private readonly baseUrl: string,
    private readonly tokens: TokenClient,
    readonly limiter: TenantLimiter,
    private readonly timeoutMs: number,
    private readonly tuning: GraphTuning = {},
  ) {
    this.origin = new URL(baseUrl).origin;
    this.doFetch = tuning.fetch ?? fetch;
    this.maxAttempts = Math.max(1, tuning.maxAttempts ?? 4);
    this.maxRetryAfter = tuning.maxRetryAfterSeconds ?? 60;
  }

  async get<T>(pathOrUrl: string, headers?: Record<string, string>): Promise<T> {
    return this.send(this.resolve(pathOrUrl), { headers, auth: true, timeoutMs: this.timeoutMs }, async (res) => {
      if (res.status >= 300) throw this.error('GET', pathOrUrl, res.status, undefined, 'unexpected redirect');
      return (await res.json()) as T;
    });
  }

  /** Every page of a collection, following @odata.nextLink; the last page carries any deltaLink. */
  async *pages<T>(pathOrUrl: string, headers?: Record<string, string>): AsyncGenerator<GraphPage<T>> {
    let next: string | undefined = pathOrUrl;
    while (next) {
      const page: GraphPage<T> = await this.get<GraphPage<T>>(next, headers);
      yield page;
      next = page['@odata.nextLink'];
    }
  }

  /**
   * Downloads `/content`: Graph answers 302 to a short-lived pre-authenticated URL, fetched
   * without our bearer token. Refuses bodies over `maxBytes` even when Content-Length lies.
   */
  async download(path: string, maxBytes: number): Promise<{ bytes: Buffer; mimeType: string | null }> {
    const timeoutMs = this.tuning.downloadTimeoutMs ?? Math.max(this.timeoutMs, 300_000);
    const location = await this.send(this.resolve(path), { auth: true, timeoutMs: this.timeoutMs }, async (res) => {
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        const loc = res.headers.get('location');
        if (!loc) throw this.error('GET', path, res.status, undefined, 'redirect without Location');
        return { kind: 'redirect', loc: new URL(loc, this.resolve(path)).href } as const;
      }
      return { kind: 'body', body: await readCapped(res, maxBytes, path), mimeType: contentType(res) } as const;
    });
    if (location.kind === 'body') return { bytes: location.body, mimeType: location.mimeType };
    return this.send(location.loc, { auth: false, timeoutMs }, async (res) => {
      if (res.status >= 300) throw this.error('GET', path, res.status, undefined, 'download redirected again');
      return { bytes: await readCapped(res, maxBytes, path), mimeType: contentType(res) };
    });
  }

  private resolve(pathOrUrl: string): string {
    if (/^https?:\/\//i.test(pathOrUrl)) {
      // nextLink/deltaLink come from the server; never send the tenant's token anywhere else.
      if (new URL(pathOrUrl).origin !== this.origin) {
        throw new GraphError(`refusing to follow a Graph link to another host (${new URL(pathOrUrl).origin})`, { retryable: false });
      }
      return pathOrUrl;
    }
    return `${this.baseUrl}/v1.0${pathOrUrl}`;
  }

  /**
   * One request with throttling, retries and typed errors. `consume` runs while the concurrency
   * slot is held, so a body being read still counts as in flight.
   */
  private async send<T>(url: string, opts: SendOptions, consume: (res: Response) => Promise<T>): Promise<T> {
    const ctxSignal = this.tuning.signal;
    let refreshed = false;
    let lastError: GraphError | null = null;
    for (let attempt = 1; attempt <= this.maxAttempts + (refreshed ? 1 : 0); attempt++) {
      ctxSignal?.throwIfAborted();
      const token = opts.auth ? await this.tokens.get(ctxSignal) : null;
      const release = await this.limiter.acquire(ctxSignal);
      let res: Response;
      let failure: GraphError;
      try {
        const timeout = AbortSignal.timeout(opts.timeoutMs);
        try {
          res = await this.doFetch(url, {
            headers: { accept: 'application/json', ...opts.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
            redirect: 'manual',
            signal: ctxSignal ? AbortSignal.any([ctxSignal, timeout]) : timeout,
          });
        } catch (err) {
          if (ctxSignal?.aborted) throw err;
          failure = new GraphError(`Graph GET ${shortPath(url)} failed: ${describeFetchError(err)}`, { retryable: true, cause: err });
          lastError = failure;
          release();
          await this.backoff(attempt, undefined);
          continue;
        }
        if (res.status < 400) {
          try {
            return await consume(res);
          } catch (err) {
            if (err instanceof UpstreamError || ctxSignal?.aborted) throw err;
            // The body stream broke or timed out mid-way: as retryable as a refused connection.
            failure = new GraphError(`Graph GET ${shortPath(url)} failed while reading: ${describeFetchError(err)}`, { retryable: true, cause: err });
            lastError = failure;
            release();
            await this.backoff(attempt, undefined);
            continue;
          }
        }
        const body = await res.text().catch(() => '');
        failure = this.error('GET', url, res.status, body, undefined, res.headers);
      } finally {
        release();
      }
      lastError = failure;
      if (res.status === 401 && token && !refreshed) {
        // Expired or revoked between our cache check and Graph's: one fresh token, then give up.
        refreshed = true;
        this.tokens.invalidate(token);
        continue;
      }
      if (!failure.retryable) throw failure;
      const retryAfter = failure.retryAfterSeconds;
      if (retryAfter !== undefined) this.limiter.pause(Math.min(retryAfter, this.maxRetryAfter));
      if (attempt >= this.maxAttempts || (retryAfter !== undefined && retryAfter > this.maxRetryAfter)) throw failure;
      await this.backoff(attempt, retryAfter);
    }
    throw lastError ?? new GraphError(`Graph GET ${shortPath(url)} failed`, { retryable: true });
  }

  /** With a Retry-After the tenant pause already makes acquire() wait; otherwise exponential backoff. */
  private async backoff(attempt: number, retryAfter: number | undefined): Promise<void> {
    if (retryAfter !== undefined) return;
    const ms = Math.min(8000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
    await sleep(ms, undefined, { signal: this.tuning.signal });
  }

  private error(method: string, url: string, status: number, body?: string, detail?: string, headers?: Headers): GraphError {
    let code: string | undefined;
    let message = detail;
    if (body) {
      try {
        const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; innerError?: { code?: unknown } } };
        if (typeof parsed.error?.code === 'string') code = parsed.error.code;
        // 410 resync answers put the specific instruction in innerError.
        if (typeof parsed.error?.innerError?.code === 'string' && /resync/i.test(parsed.error.innerError.code)) code = parsed.error.innerError.code;
        if (typeof parsed.error?.message === 'string') message = parsed.error.message;
      } catch {
        // not JSON: status alone
      }
    }
    const retryAfterSeconds = parseRetryAfter(headers?.get('retry-after'));
    return new GraphError(
      `Graph ${method} ${shortPath(url)} → ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
      { retryable: RETRYABLE.has(status), status, code, retryAfterSeconds, location: headers?.get('location') ?? undefined },
    );
  }
}

function contentType(res: Response): string | null {
  return res.headers.get('content-type')?.split(';')[0]?.trim() || null;
}

async function readCapped(res: Response, maxBytes: number, what: string): Promise<Buffer> {
  const tooLarge = () =>
    new UpstreamError(`${shortPath(what)} is larger than the ${maxBytes}-byte limit (maxFileBytes)`, { retryable: false, status: res.status });
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
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
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/** Path only: query strings hold delta tokens and download signatures, which do not belong in logs. */
function shortPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

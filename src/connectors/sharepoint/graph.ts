import { AuthenticationHandler, Client, ResponseType } from '@microsoft/microsoft-graph-client';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import type { AppTokens } from './auth.ts';
import {
  LimitedFetchHandler, RETRYABLE_STATUS, RequestControl, ThrottleHandler, chain, contentType, runChain, shortPath,
  type HttpTuning, type TenantLimiter,
} from './http.ts';

export type GraphTuning = HttpTuning;

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

export interface GraphPage<T> {
  value?: T[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

/**
 * Microsoft Graph v1.0 through @microsoft/microsoft-graph-client, with the chain described in
 * http.ts. `customHosts` carries the configured `graphBaseUrl`'s host so the SDK's
 * AuthenticationHandler attaches the token there (it knows only Microsoft's own Graph hosts); it
 * strips the token from any other host. Every answer is taken RAW and turned into a typed error
 * here, so Retry-After and Graph's error code survive.
 */
export class GraphApi {
  private readonly client: Client;
  /** Pre-authenticated download URLs: the same throttling and limits, but never a token. */
  private readonly plain;
  private readonly origin: string;
  private readonly scope: string;

  constructor(
    private readonly baseUrl: string,
    tokens: AppTokens,
    readonly limiter: TenantLimiter,
    private readonly timeoutMs: number,
    private readonly tuning: GraphTuning = {},
  ) {
    this.origin = new URL(baseUrl).origin;
    this.scope = `${baseUrl}/.default`;
    this.client = Client.initWithMiddleware({
      baseUrl,
      defaultVersion: 'v1.0',
      customHosts: new Set([new URL(baseUrl).hostname]),
      middleware: [
        new ThrottleHandler({ limiter, tuning, service: 'Graph', onUnauthorized: () => tokens.invalidate(this.scope) }),
        new AuthenticationHandler(tokens.provider(this.scope)),
        new LimitedFetchHandler(limiter, timeoutMs, tuning),
      ],
    });
    this.plain = chain(new ThrottleHandler({ limiter, tuning, service: 'download' }), new LimitedFetchHandler(limiter, timeoutMs, tuning));
  }

  /** The token Graph accepts (for the connection test). */
  get tokenScope(): string {
    return this.scope;
  }

  async get<T>(pathOrUrl: string, headers?: Record<string, string>): Promise<T> {
    const res = await this.send(pathOrUrl, headers, new RequestControl());
    if (res.status >= 300) throw this.error(pathOrUrl, res, 'unexpected redirect');
    return (await res.json()) as T;
  }

  /**
   * A write (subscriptions: POST, PATCH, DELETE) through the same chain; the JSON answer, or null
   * for 204. Error statuses come back as the typed GraphError.
   */
  async write<T>(method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T | null> {
    const control = new RequestControl();
    let res: Response;
    try {
      const req = this.client.api(path).headers({ accept: 'application/json' }).middlewareOptions([control]).responseType(ResponseType.RAW);
      res = (await (method === 'POST' ? req.post(body) : method === 'PATCH' ? req.patch(body) : req.delete())) as Response;
    } catch (err) {
      if (control.error !== undefined) throw control.error;
      throw new GraphError(`Graph ${method} ${shortPath(this.resolve(path))} failed: ${(err as Error).message}`, { retryable: false, cause: err });
    }
    if (res.status >= 400) {
      const e = this.error(path, res, undefined, await res.text().catch(() => ''));
      throw new GraphError(e.message.replace(/^Graph GET/, `Graph ${method}`), { retryable: e.retryable, status: e.status, code: e.code, retryAfterSeconds: e.retryAfterSeconds });
    }
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? (JSON.parse(text) as T) : null;
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
    const first = await this.send(path, undefined, new RequestControl({ maxBytes }));
    let res = first;
    if (first.status >= 300 && first.status < 400) {
      const loc = first.headers.get('location');
      if (!loc) throw this.error(path, first, 'redirect without Location');
      const timeoutMs = this.tuning.downloadTimeoutMs ?? Math.max(this.timeoutMs, 300_000);
      res = await runChain(this.plain, new URL(loc, this.resolve(path)).href, {}, new RequestControl({ maxBytes, timeoutMs }));
      if (res.status >= 300) throw this.error(path, res, res.status < 400 ? 'download redirected again' : undefined);
    }
    return { bytes: Buffer.from(await res.arrayBuffer()), mimeType: contentType(res) };
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

  /** One GET through the SDK; error statuses come back as the typed GraphError. */
  private async send(pathOrUrl: string, headers: Record<string, string> | undefined, control: RequestControl): Promise<Response> {
    const target = /^https?:\/\//i.test(pathOrUrl) ? this.resolve(pathOrUrl) : pathOrUrl;
    let res: Response;
    try {
      res = (await this.client
        .api(target)
        .headers({ accept: 'application/json', ...headers })
        .middlewareOptions([control])
        .responseType(ResponseType.RAW)
        .get()) as Response;
    } catch (err) {
      if (control.error !== undefined) throw control.error;
      this.tuning.signal?.throwIfAborted();
      throw new GraphError(`Graph GET ${shortPath(this.resolve(pathOrUrl))} failed: ${(err as Error).message}`, { retryable: false, cause: err });
    }
    if (res.status >= 400) throw this.error(pathOrUrl, res, undefined, await res.text().catch(() => ''));
    return res;
  }

  private error(pathOrUrl: string, res: Response, detail?: string, body?: string): GraphError {
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
    return new GraphError(
      `Graph GET ${shortPath(/^https?:/i.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}/v1.0${pathOrUrl}`)} → ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
      {
        retryable: RETRYABLE_STATUS.has(res.status), status: res.status, code,
        retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')), location: res.headers.get('location') ?? undefined,
      },
    );
  }
}

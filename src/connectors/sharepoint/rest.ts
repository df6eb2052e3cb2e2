import { AuthenticationHandler, type Middleware } from '@microsoft/microsoft-graph-client';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import type { AppTokens } from './auth.ts';
import {
  LimitedFetchHandler, RETRYABLE_STATUS, RequestControl, ThrottleHandler, chain, runChain, shortPath,
  type HttpTuning, type TenantLimiter,
} from './http.ts';

/**
 * SharePoint's own REST API (`{siteUrl}/_api/…`), for what Graph v1.0 cannot do: list the members
 * of a SharePoint site group. It takes a token for the site's origin
 * (`https://<tenant>.sharepoint.com/.default`) and, app-only, only one obtained with a certificate.
 * Requests go through the same middleware as Graph calls, so throttling, Retry-After and the
 * tenant's concurrency bound are shared (SharePoint throttles Graph and REST traffic together).
 */
export class SharePointRest {
  private readonly chains = new Map<string, Middleware>();

  constructor(
    private readonly tokens: AppTokens,
    private readonly limiter: TenantLimiter,
    private readonly timeoutMs: number,
    private readonly tuning: HttpTuning = {},
  ) {}

  /** `odata=nometadata` asked for; `verbose` and `minimalmetadata` shapes are read as well. */
  async get<T>(url: string): Promise<T> {
    const origin = new URL(url).origin;
    const res = await runChain(this.chainFor(origin), url, { accept: 'application/json;odata=nometadata' }, new RequestControl(), new Set([new URL(url).hostname]));
    const text = await res.text();
    if (res.status >= 300) throw restError(url, res, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new UpstreamError(`SharePoint REST GET ${shortPath(url)} answered ${res.status} with a body that is not JSON`, { retryable: true, status: res.status });
    }
  }

  /** Every item of a collection, page by page (`odata.nextLink`, `@odata.nextLink` or verbose `d.__next`). */
  async *pages<T>(url: string): AsyncGenerator<T[]> {
    const origin = new URL(url).origin;
    let next: string | undefined = url;
    while (next) {
      const body: Record<string, unknown> = await this.get<Record<string, unknown>>(next);
      const { items, nextLink }: { items: T[]; nextLink?: string } = readCollection<T>(body);
      yield items;
      if (nextLink && new URL(nextLink, next).origin !== origin) {
        throw new UpstreamError(`refusing to follow a SharePoint link to another host (${new URL(nextLink, next).origin})`, { retryable: false });
      }
      next = nextLink ? new URL(nextLink, next).href : undefined;
    }
  }

  private chainFor(origin: string): Middleware {
    let c = this.chains.get(origin);
    if (!c) {
      const scope = `${origin}/.default`;
      c = chain(
        new ThrottleHandler({ limiter: this.limiter, tuning: this.tuning, service: 'SharePoint REST', onUnauthorized: () => this.tokens.invalidate(scope) }),
        new AuthenticationHandler(this.tokens.provider(scope)),
        new LimitedFetchHandler(this.limiter, this.timeoutMs, this.tuning),
      );
      this.chains.set(origin, c);
    }
    return c;
  }
}

export function readCollection<T>(body: Record<string, unknown>): { items: T[]; nextLink?: string } {
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  if (Array.isArray(body.value)) return { items: body.value as T[], nextLink: str(body['odata.nextLink']) ?? str(body['@odata.nextLink']) };
  const d = body.d as { results?: unknown; __next?: unknown } | unknown[] | undefined;
  if (Array.isArray(d)) return { items: d as T[] };
  if (d && Array.isArray(d.results)) return { items: d.results as T[], nextLink: str(d.__next) };
  throw new UpstreamError('SharePoint REST answered a collection in an unknown shape', { retryable: false });
}

/** SharePoint's error bodies: `odata.error` (JSON light), `error` (verbose / OData v4), or OAuth's `error_description`. */
function restError(url: string, res: Response, text: string): UpstreamError {
  let message = '';
  try {
    const b = JSON.parse(text) as Record<string, unknown>;
    const e = (b['odata.error'] ?? b.error) as { message?: unknown } | string | undefined;
    const m = typeof e === 'object' && e ? e.message : undefined;
    message = typeof m === 'string' ? m : typeof (m as { value?: unknown })?.value === 'string' ? (m as { value: string }).value : '';
    if (!message && typeof b.error_description === 'string') message = b.error_description;
    if (!message && typeof e === 'string') message = e;
  } catch {
    // not JSON: status alone
  }
  return new UpstreamError(`SharePoint REST GET ${shortPath(url)} → ${res.status}${message ? `: ${message}` : ''}`, {
    retryable: RETRYABLE_STATUS.has(res.status), status: res.status, retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')),
  });
}

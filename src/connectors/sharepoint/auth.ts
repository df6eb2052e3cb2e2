import { UpstreamError, parseRetryAfter } from '../../errors.ts';

/**
 * App-only access tokens (OAuth 2.0 client-credentials grant) for Microsoft Graph.
 *
 * Why not @azure/msal-node's ConfidentialClientApplication: msal-common refuses any authority that
 * is not https (`authority_uri_insecure`), and before the first token it resolves the authority
 * through instance discovery / OpenID metadata, which needs either login.microsoftonline.com or a
 * hand-built `authorityMetadata` blob. Sovereign clouds, private mirrors and the local fake Graph
 * used by the tests need `authorityHost` to be honoured as given, so this does the one documented
 * POST to `{authorityHost}/{tenantId}/oauth2/v2.0/token` itself. The grant has no refresh token;
 * "refresh" means asking again before expiry (or after Graph answers 401).
 */
export interface TokenClientOptions {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** `{graphBaseUrl}/.default`: every application permission granted to the app. */
  scope: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

interface CachedToken {
  value: string;
  /** ms epoch after which the token is not used any more (some margin before real expiry). */
  refreshAt: number;
}

/** A credentials problem: retrying will not help, the admin has to fix the source. */
export class CredentialsError extends UpstreamError {
  constructor(detail: string, status: number) {
    super(`Microsoft Graph rejected the credentials: ${detail}`, { retryable: false, status });
    this.name = 'CredentialsError';
  }
}

export class TokenClient {
  private cached: CachedToken | null = null;
  private pending: Promise<string> | null = null;
  private readonly doFetch: typeof fetch;
  /** Observable for tests and metrics. */
  tokenRequests = 0;

  constructor(private readonly opts: TokenClientOptions) {
    this.doFetch = opts.fetch ?? fetch;
  }

  /** A valid token; concurrent callers share one in-flight request. */
  async get(signal?: AbortSignal): Promise<string> {
    if (this.cached && Date.now() < this.cached.refreshAt) return this.cached.value;
    this.pending ??= this.request(signal).finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** Graph said 401 for this token: drop it so the next get() asks again (unless already replaced). */
  invalidate(token: string): void {
    if (this.cached?.value === token) this.cached = null;
  }

  private async request(signal?: AbortSignal): Promise<string> {
    const url = `${this.opts.authorityHost}/${encodeURIComponent(this.opts.tenantId)}/oauth2/v2.0/token`;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.opts.clientId,
      client_secret: this.opts.clientSecret,
      scope: this.opts.scope,
    });
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    this.tokenRequests++;
    let res: Response;
    try {
      res = await this.doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new UpstreamError(`token endpoint ${this.opts.authorityHost} unreachable: ${(err as Error).message}`, {
        retryable: true,
        cause: err,
      });
    }
    const text = await res.text().catch(() => '');
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // Proxies and outages answer HTML; the status code still says what happened.
    }
    if (!res.ok) {
      if (res.status === 429 || res.status >= 500) {
        throw new UpstreamError(`token endpoint answered ${res.status}`, {
          retryable: true,
          status: res.status,
          retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')),
        });
      }
      // AADSTS descriptions carry trace ids and timestamps on later lines; the first line is the reason.
      const description = typeof json.error_description === 'string' ? json.error_description.split(/\r?\n/)[0] : '';
      const code = typeof json.error === 'string' ? json.error : `HTTP ${res.status}`;
      throw new CredentialsError(description ? `${code}: ${description}` : code, res.status);
    }
    const token = json.access_token;
    if (typeof token !== 'string' || !token) {
      throw new UpstreamError('token endpoint answered without an access_token', { retryable: false, status: res.status });
    }
    const lifetime = Number(json.expires_in);
    const seconds = Number.isFinite(lifetime) && lifetime > 0 ? lifetime : 300;
    // Renew 5 minutes early (or at half-life for short tokens) so a long page never runs on a dying token.
    const margin = Math.min(300, seconds / 2);
    this.cached = { value: token, refreshAt: Date.now() + (seconds - margin) * 1000 };
    return token;
  }
}

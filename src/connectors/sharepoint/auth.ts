import { ConfidentialClientApplication, LogLevel, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import type { AuthenticationProvider } from '@microsoft/microsoft-graph-client';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import type { AppCredential } from './config.ts';
import { describeFetchError } from './http.ts';
import { recordStatus, upstreamSpan } from '../../telemetry/tracing.ts';

/**
 * App-only access tokens (OAuth 2.0 client credentials) through @azure/msal-node's
 * ConfidentialClientApplication, with a client secret or a certificate (MSAL signs the client
 * assertion: PS256 with an `x5t#S256` thumbprint, plus `x5c`). MSAL caches each token per scope
 * and renews it before expiry; one app serves both scopes a certificate source needs — Graph
 * (`<graphBase>/.default`) and SharePoint REST (`https://<tenant>.sharepoint.com/.default`).
 *
 * `authorityHost` is honoured as given, with no network discovery: `knownAuthorities` makes MSAL
 * trust the host without calling Microsoft's instance-discovery endpoint, and `authorityMetadata`
 * spells out the endpoints so it never fetches the OpenID configuration either. That is what
 * sovereign clouds, private endpoints and test fakes need.
 */

/** A credentials problem: retrying will not help, the admin has to fix the source. */
export class CredentialsError extends UpstreamError {
  /** `service`: what the token was for, when not Microsoft Graph (e.g. "SharePoint (https://contoso.sharepoint.com)"). */
  constructor(detail: string, status: number | undefined, service = 'Microsoft Graph') {
    super(`${service} rejected the credentials: ${detail}`, { retryable: false, status });
    this.name = 'CredentialsError';
  }
}

export interface AppTokensOptions {
  /** `<graphBase>/.default`: errors for other scopes name the resource instead of Graph. */
  graphScope: string;
  authorityHost: string;
  tenantId: string;
  credential: AppCredential;
  timeoutMs: number;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

interface TokenAnswer {
  at: number;
  status: number;
  body: Record<string, unknown>;
  retryAfter: number | undefined;
}
type Answer = TokenAnswer | { at: number; failure: unknown };

/** MSAL's transport: the connector's fetch (timeouts, test fakes), and a record of each answer. */
class FetchNetworkModule implements INetworkModule {
  /** Token endpoint calls made (tests and metrics). */
  posts = 0;
  /** The last answer or transport failure per requested scope, to explain MSAL's errors precisely. */
  readonly last = new Map<string, Answer>();

  constructor(private readonly doFetch: typeof fetch, private readonly timeoutMs: number, private readonly signal?: AbortSignal) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    this.posts++;
    return this.send<T>('POST', url, options);
  }

  private async send<T>(method: string, url: string, options: NetworkRequestOptions | undefined, timeout?: number): Promise<NetworkResponse<T>> {
    const scope = options?.body ? new URLSearchParams(options.body).get('scope') ?? '' : '';
    const limit = AbortSignal.timeout(timeout ?? this.timeoutMs);
    let res: Response;
    let text: string;
    for (let attempt = 1; ; attempt++) {
      try {
        [res, text] = await upstreamSpan(method, url, async (span) => {
          const r = await this.doFetch(url, {
            method,
            headers: options?.headers,
            body: options?.body,
            signal: this.signal ? AbortSignal.any([this.signal, limit]) : limit,
          });
          recordStatus(span, r.status);
          return [r, await r.text()] as const;
        });
        break;
      } catch (err) {
        // A pooled keep-alive connection the server closed meanwhile fails before any answer;
        // a client-credentials request is safe to send once more on a fresh connection.
        if (attempt === 1 && !limit.aborted && !this.signal?.aborted && /ECONNRESET|UND_ERR_SOCKET|other side closed/i.test(describeFetchError(err))) continue;
        this.last.set(scope, { at: Date.now(), failure: err });
        throw err;
      }
    }
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // Proxies and outages answer HTML; the status code still says what happened.
    }
    if (!res.ok && typeof body.error !== 'string') {
      // MSAL only recognises a failure by its `error` field.
      body = { ...body, error: res.status === 429 || res.status >= 500 ? 'temporarily_unavailable' : 'invalid_request', error_description: `HTTP ${res.status}` };
    }
    const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
    if (method === 'POST') this.last.set(scope, { at: Date.now(), status: res.status, body, retryAfter });
    const headers: Record<string, string> = {};
    res.headers.forEach((value, key) => {
      headers[key] = value;
    });
    return { status: res.status, headers, body: body as T };
  }
}

/** Seconds MSAL keeps refusing a scope after a 429/5xx from the token endpoint without Retry-After. */
const MSAL_DEFAULT_THROTTLE_SECONDS = 60;

export class AppTokens {
  readonly kind: AppCredential['kind'];
  private readonly app: ConfidentialClientApplication;
  private readonly net: FetchNetworkModule;
  private readonly pending = new Map<string, Promise<string>>();
  private readonly stale = new Set<string>();

  constructor(private readonly opts: AppTokensOptions) {
    const { authorityHost, tenantId, credential } = opts;
    this.kind = credential.kind;
    this.net = new FetchNetworkModule(opts.fetch ?? fetch, opts.timeoutMs, opts.signal);
    const authority = `${authorityHost}/${encodeURIComponent(tenantId)}`;
    this.app = new ConfidentialClientApplication({
      auth: {
        clientId: credential.clientId,
        authority,
        knownAuthorities: [authorityHost],
        authorityMetadata: JSON.stringify({
          token_endpoint: `${authority}/oauth2/v2.0/token`,
          authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
          issuer: `${authority}/v2.0`,
          jwks_uri: `${authority}/discovery/v2.0/keys`,
        }),
        ...(credential.kind === 'secret'
          ? { clientSecret: credential.clientSecret }
          : {
              clientCertificate: {
                thumbprintSha256: credential.certificate.thumbprintSha256,
                privateKey: credential.certificate.privateKeyPem,
                // Lets Entra ID match the certificate by subject name and issuer too (rotation).
                x5c: credential.certificate.certificatePem,
              },
            }),
      },
      system: {
        networkClient: this.net,
        loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => {} },
      },
    });
  }

  /** Token endpoint calls made so far (MSAL's cache answers the rest). */
  get tokenRequests(): number {
    return this.net.posts;
  }

  /** A valid token for `<resource>/.default`; concurrent callers share one request. */
  get(scope: string): Promise<string> {
    let p = this.pending.get(scope);
    if (!p) {
      p = this.request(scope).finally(() => this.pending.delete(scope));
      this.pending.set(scope, p);
    }
    return p;
  }

  /** The service answered 401 with this scope's token: the next get() bypasses MSAL's cache. */
  invalidate(scope: string): void {
    this.stale.add(scope);
  }

  /** The Graph client's view of one scope. */
  provider(scope: string): AuthenticationProvider {
    return { getAccessToken: () => this.get(scope) };
  }

  private async request(scope: string): Promise<string> {
    const skipCache = this.stale.delete(scope);
    const before = this.net.last.get(scope);
    try {
      const result = await this.app.acquireTokenByClientCredential({ scopes: [scope], skipCache });
      if (!result?.accessToken) throw new UpstreamError('token endpoint answered without an access_token', { retryable: false });
      return result.accessToken;
    } catch (err) {
      if (this.opts.signal?.aborted) throw err;
      throw this.explain(scope, err, before);
    }
  }

  private explain(scope: string, err: unknown, before: Answer | undefined): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const host = this.opts.authorityHost;
    const service = scope === this.opts.graphScope ? undefined : `Microsoft Entra ID, asked for a token for ${scope.replace(/\/\.default$/, '')},`;
    let last = this.net.last.get(scope);
    // No call this time: MSAL answered from its throttling cache (after a 429/5xx) or refused locally.
    if (last === before && !(last && 'status' in last && (last.status === 429 || last.status >= 500))) last = undefined;
    if (!last) {
      const e = err as { errorCode?: string; errorMessage?: string; message?: string };
      return new CredentialsError(`${e.errorCode ?? 'error'}: ${e.errorMessage || e.message || String(err)}`, undefined, service);
    }
    if ('failure' in last) {
      return new UpstreamError(`token endpoint ${host} unreachable: ${describeFetchError(last.failure)}`, { retryable: true, cause: err });
    }
    if (last.status === 429 || last.status >= 500) {
      // MSAL itself refuses this scope until the wait is over; tell the job layer how long.
      const wait = last.retryAfter ?? MSAL_DEFAULT_THROTTLE_SECONDS;
      const remaining = Math.max(1, Math.ceil((last.at + wait * 1000 - Date.now()) / 1000));
      return new UpstreamError(`token endpoint answered ${last.status}`, { retryable: true, status: last.status, retryAfterSeconds: remaining, cause: err });
    }
    // AADSTS descriptions carry trace ids and timestamps on later lines; the first line is the reason.
    const description = typeof last.body.error_description === 'string' ? last.body.error_description.split(/\r?\n/)[0] : '';
    const code = typeof last.body.error === 'string' ? last.body.error : `HTTP ${last.status}`;
    return new CredentialsError(description ? `${code}: ${description}` : code, last.status, service);
  }
}

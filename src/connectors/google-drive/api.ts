import { setTimeout as sleep } from 'node:timers/promises';
import { admin_directory_v1 } from 'googleapis/build/src/apis/admin/directory_v1.js';
import { auth as googleAuth } from 'googleapis/build/src/apis/drive/index.js';
import { drive_v3 } from 'googleapis/build/src/apis/drive/v3.js';
import { UpstreamError, parseRetryAfter } from '../../errors.ts';
import { limiterFor, type TenantLimiter } from '../limiter.ts';
import { describeRequest, recordStatus, upstreamSpan } from '../../telemetry/tracing.ts';
import { DIRECTORY_SCOPE, DRIVE_SCOPE, type ServiceAccountKey } from './config.ts';

/**
 * The official clients (googleapis Drive v3 and Admin SDK Directory v1), one JWT client per
 * impersonated user, behind one retry/throttling policy.
 *
 * Why the JWT client's transporter is intercepted: gtoken (which google-auth-library's JWT uses)
 * posts the JWT-bearer grant to the fixed `https://oauth2.googleapis.com/token` and signs the
 * assertion with that audience, whatever the key's `token_uri` says. Private endpoints and test
 * servers need the key's `token_uri` honoured, so the assertion's `aud` is set to it (an
 * additional claim overrides gtoken's) and the POST is redirected to it.
 *
 * Why gaxios' own retries are off: they do not know Drive's `403 userRateLimitExceeded`, do not
 * honour Retry-After, and cannot hand a long wait to the job layer. This client does all three.
 */

export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

type JWTClient = InstanceType<typeof googleAuth.JWT>;

export interface GoogleTuning {
  /** Attempts per request for throttling, 5xx and network failures. */
  maxAttempts?: number;
  /** A Retry-After (or a backoff) longer than this is not slept through: the error goes to the job layer. */
  maxRetryAfterSeconds?: number;
  /** First backoff step when Google gives no Retry-After; doubled per attempt, with jitter. */
  baseDelayMs?: number;
  signal?: AbortSignal;
}

/** A Google API error answer, with the first `errors[].reason` (`userRateLimitExceeded`, `notFound`…). */
export class GoogleApiError extends UpstreamError {
  readonly reason: string | undefined;
  constructor(message: string, opts: { retryable: boolean; status?: number; retryAfterSeconds?: number; reason?: string; cause?: unknown }) {
    super(message, opts);
    this.name = 'GoogleApiError';
    this.reason = opts.reason;
  }
}

/** The token endpoint refused the grant: only the admin can fix the key, delegation or subject. */
export class GoogleCredentialsError extends UpstreamError {
  readonly code: string;
  readonly description: string;
  readonly subject: string;
  constructor(subject: string, code: string, description: string, status?: number) {
    super(`Google refused a token for ${subject}: ${code}${description ? ` (${description})` : ''}`, { retryable: false, status });
    this.name = 'GoogleCredentialsError';
    this.subject = subject;
    this.code = code;
    this.description = description;
  }
}

/** Reasons Drive and Directory use for "slow down" (documented on the 403 and 429 answers). */
const RATE_REASONS = new Set(['userRateLimitExceeded', 'rateLimitExceeded', 'sharingRateLimitExceeded', 'backendError', 'quotaExceeded']);
const DAILY_REASONS = new Set(['dailyLimitExceeded', 'dailyLimitExceededUnreg']);

interface GaxiosLikeError {
  message?: string;
  status?: number;
  code?: string | number;
  config?: { url?: string | URL };
  response?: { status?: number; data?: unknown; headers?: Headers | Record<string, string> };
}

export class GoogleApi {
  /** HTTP requests sent to Drive and Directory (retries included) and to the token endpoint. */
  readonly counts = { api: 0, token: 0 };
  private readonly clients = new Map<string, JWTClient>();
  private readonly drives = new Map<string, drive_v3.Drive>();
  private directoryClient: admin_directory_v1.Admin | null = null;
  private readonly maxAttempts: number;
  private readonly maxRetryAfter: number;
  private readonly baseDelayMs: number;
  readonly limiter: TenantLimiter;

  constructor(
    private readonly key: ServiceAccountKey,
    private readonly rootUrl: string,
    readonly adminEmail: string,
    private readonly timeoutMs: number,
    maxConcurrency: number,
    private readonly tuning: GoogleTuning = {},
  ) {
    this.maxAttempts = Math.max(1, tuning.maxAttempts ?? 5);
    this.maxRetryAfter = tuning.maxRetryAfterSeconds ?? 60;
    this.baseDelayMs = tuning.baseDelayMs ?? 500;
    // Drive's quotas are per project and per impersonated user; one budget per service account keeps
    // two sources of one Workspace from each assuming they own it.
    this.limiter = limiterFor(`google|${rootUrl}|${key.client_email}`, maxConcurrency);
  }

  get tokenUri(): string {
    return this.key.token_uri;
  }

  get clientId(): string | undefined {
    return this.key.client_id;
  }

  /** A JWT client impersonating `subject` (domain-wide delegation) with the given scopes. */
  jwt(subject: string, scopes: string[]): JWTClient {
    const k = `${subject}|${scopes.join(' ')}`;
    let c = this.clients.get(k);
    if (!c) {
      c = new googleAuth.JWT({
        email: this.key.client_email,
        key: this.key.private_key,
        keyId: this.key.private_key_id,
        scopes,
        subject,
        additionalClaims: { aud: this.key.token_uri },
      });
      const tokenUri = this.key.token_uri;
      c.transporter.interceptors.request.add({
        resolved: async (opts) => {
          if (sameUrl(String(opts.url), GOOGLE_TOKEN_URL)) {
            this.counts.token++;
            if (tokenUri !== GOOGLE_TOKEN_URL) opts.url = new URL(tokenUri);
            opts.timeout = this.timeoutMs;
          }
          return opts;
        },
      });
      this.clients.set(k, c);
    }
    return c;
  }

  /** Drive v3 as `subject` (the admin by default). */
  drive(subject = this.adminEmail): drive_v3.Drive {
    let d = this.drives.get(subject);
    if (!d) {
      d = new drive_v3.Drive({ auth: this.jwt(subject, this.scopesFor(subject)), rootUrl: this.rootUrl });
      this.drives.set(subject, d);
    }
    return d;
  }

  /** Admin SDK Directory v1, always as the admin. */
  directory(): admin_directory_v1.Admin {
    this.directoryClient ??= new admin_directory_v1.Admin({ auth: this.jwt(this.adminEmail, this.scopesFor(this.adminEmail)), rootUrl: this.rootUrl });
    return this.directoryClient;
  }

  /** The admin needs Directory too; everyone else is only ever read as for Drive. */
  scopesFor(subject: string): string[] {
    return subject === this.adminEmail ? [DRIVE_SCOPE, DIRECTORY_SCOPE] : [DRIVE_SCOPE];
  }

  /** Obtains (or reuses) a token for `subject`; throws GoogleCredentialsError when the grant is refused. */
  async token(subject: string, scopes = this.scopesFor(subject)): Promise<void> {
    await this.call(`token for ${subject}`, subject, async () => {
      await this.jwt(subject, scopes).getAccessToken();
      return { data: undefined };
    });
  }

  /**
   * Per-call options every generated method takes: our timeout, no gaxios retries, the caller's
   * signal, and `rootUrl` again so a rootUrl with a path prefix keeps it (googleapis-common only
   * takes the origin of the client-level one).
   */
  options(extra: Record<string, unknown> = {}) {
    return { rootUrl: this.rootUrl, retry: false, timeout: this.timeoutMs, signal: this.tuning.signal, ...extra };
  }

  /**
   * Runs one API request under the concurrency limit with Drive's retry rules: 429, 5xx and
   * 403 rate-limit reasons are retried after Retry-After or an exponential backoff with jitter;
   * a wait longer than `maxRetryAfterSeconds` is thrown as a retryable UpstreamError carrying
   * `retryAfterSeconds`, so the job layer reschedules instead of holding a worker.
   */
  async call<T>(what: string, subject: string, fn: () => Promise<{ data: T }>): Promise<T> {
    let last: UpstreamError | null = null;
    let reauthorized = false;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      this.tuning.signal?.throwIfAborted();
      const release = await this.limiter.acquire(this.tuning.signal);
      let failure: UpstreamError;
      try {
        this.counts.api++;
        // googleapis builds the URL itself: the span learns method and URL from the answer (or the error).
        return await upstreamSpan(null, null, async (span) => {
          try {
            const res = await fn() as { data: T; status?: number; config?: { method?: string; url?: string | URL } };
            // No config: a token fetched (or reused from cache) by `token()`, not one request.
            if (res.config) describeRequest(span, res.config.method ?? 'GET', res.config.url);
            else span.updateName('google token');
            recordStatus(span, res.status);
            return res.data;
          } catch (err) {
            const e = err as GaxiosLikeError & { config?: { method?: string } };
            describeRequest(span, e?.config?.method ?? 'GET', e?.config?.url);
            recordStatus(span, e?.response?.status);
            throw err;
          }
        });
      } catch (err) {
        if (this.tuning.signal?.aborted) throw err;
        failure = this.classify(what, subject, err);
      } finally {
        release();
      }
      last = failure;
      if (failure.status === 401 && !reauthorized && !(failure instanceof GoogleCredentialsError)) {
        // A revoked or expired token: drop it once and ask again.
        reauthorized = true;
        for (const [k, c] of this.clients) if (k.startsWith(`${subject}|`)) c.credentials = {};
        attempt--;
        continue;
      }
      if (!failure.retryable || attempt === this.maxAttempts) break;
      const waitSeconds = failure.retryAfterSeconds ?? this.backoffSeconds(attempt);
      if (waitSeconds > this.maxRetryAfter) break;
      if (failure.retryAfterSeconds !== undefined) this.limiter.pause(failure.retryAfterSeconds);
      await sleep(waitSeconds * 1000, undefined, { signal: this.tuning.signal });
    }
    throw last!;
  }

  private backoffSeconds(attempt: number): number {
    const ceiling = this.baseDelayMs * 2 ** (attempt - 1);
    return (ceiling / 2 + Math.random() * (ceiling / 2)) / 1000;
  }

  private classify(what: string, subject: string, err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const e = err as GaxiosLikeError;
    const status = e?.response?.status ?? (typeof e?.status === 'number' ? e.status : undefined);
    const url = e?.config?.url ? String(e.config.url) : '';
    const body = parseBody(e?.response?.data);
    const isToken = sameUrl(url, this.key.token_uri) || sameUrl(url, GOOGLE_TOKEN_URL);
    if (status === undefined) {
      const reason = e?.code === 'TimeoutError' || (e as Error)?.name === 'TimeoutError' ? 'timed out' : (e?.message ?? String(err));
      return new GoogleApiError(`${what} failed: ${reason}`, { retryable: true, cause: err });
    }
    const retryAfterSeconds = parseRetryAfter(header(e.response?.headers, 'retry-after'));
    if (isToken) {
      if (status === 429 || status >= 500) {
        return new GoogleApiError(`token endpoint answered ${status}`, { retryable: true, status, retryAfterSeconds, cause: err });
      }
      const code = typeof body?.error === 'string' ? body.error : `HTTP ${status}`;
      const description = typeof body?.error_description === 'string' ? body.error_description : '';
      return new GoogleCredentialsError(subject, code, description, status);
    }
    const apiError = (body?.error && typeof body.error === 'object' ? body.error : {}) as { message?: unknown; errors?: Array<{ reason?: unknown }>; status?: unknown };
    const reason = typeof apiError.errors?.[0]?.reason === 'string' ? apiError.errors[0].reason : undefined;
    const message = typeof apiError.message === 'string' ? apiError.message : (e.message ?? '');
    const text = `${what} → ${status}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`;
    if (reason && DAILY_REASONS.has(reason)) {
      // The daily quota resets at midnight Pacific; an hour is a reasonable first wait.
      return new GoogleApiError(text, { retryable: true, status, reason, retryAfterSeconds: retryAfterSeconds ?? 3600, cause: err });
    }
    const rateLimited = status === 429 || (status === 403 && reason !== undefined && RATE_REASONS.has(reason));
    const retryable = rateLimited || status >= 500 || status === 408;
    return new GoogleApiError(text, { retryable, status, reason, retryAfterSeconds, cause: err });
  }
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

function header(headers: Headers | Record<string, string> | undefined, name: string): string | null {
  if (!headers) return null;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const rec = headers as Record<string, string>;
  return rec[name] ?? rec[name.toLowerCase()] ?? null;
}

/** Error bodies arrive parsed, as text, or as bytes (for arraybuffer downloads). */
function parseBody(data: unknown): Record<string, unknown> | null {
  try {
    if (data instanceof ArrayBuffer) data = Buffer.from(data).toString('utf8');
    else if (ArrayBuffer.isView(data)) data = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    if (typeof data === 'string') data = JSON.parse(data);
  } catch {
    return null;
  }
  return data && typeof data === 'object' ? (data as Record<string, unknown>) : null;
}

export const isNotFound = (err: unknown) => err instanceof GoogleApiError && err.status === 404;
export const isForbidden = (err: unknown) => err instanceof GoogleApiError && err.status === 403 && !err.retryable;

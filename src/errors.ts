/**
 * Errors that carry meaning across layers: HTTP handlers turn them into problem+json, job runners
 * decide from them whether to retry, wait (Retry-After) or give up.
 */
export class AppError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  constructor(status: number, title: string, detail?: string, type?: string) {
    super(detail ?? title);
    this.status = status;
    this.title = title;
    this.type = type ?? `https://clearance.dev/problems/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  }
}

export const badRequest = (detail: string) => new AppError(400, 'Bad Request', detail);
export const unauthorized = (detail = 'A valid bearer token is required') => new AppError(401, 'Unauthorized', detail);
export const forbidden = (detail = 'This action needs another role') => new AppError(403, 'Forbidden', detail);
/** Used for both "does not exist" and "you may not see it", so callers cannot probe for existence. */
export const notFound = (what = 'Resource') => new AppError(404, 'Not Found', `${what} not found`);
export const conflict = (detail: string) => new AppError(409, 'Conflict', detail);
export const unprocessable = (detail: string) => new AppError(422, 'Unprocessable Entity', detail);

/** A failure talking to an upstream system (document source, embedding API, vector store). */
export class UpstreamError extends Error {
  readonly retryable: boolean;
  /** Seconds the upstream asked us to wait (429/503 Retry-After). */
  readonly retryAfterSeconds?: number;
  readonly status?: number;
  constructor(message: string, opts: { retryable: boolean; retryAfterSeconds?: number; status?: number; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'UpstreamError';
    this.retryable = opts.retryable;
    this.retryAfterSeconds = opts.retryAfterSeconds;
    this.status = opts.status;
  }
}

/** The connector's delta cursor is no longer valid upstream (Graph 410, Drive invalid page token): run a full sync. */
export class CursorExpiredError extends Error {
  constructor(message = 'Delta cursor expired; a full enumeration is needed') {
    super(message);
    this.name = 'CursorExpiredError';
  }
}

/** Parses an HTTP Retry-After header (seconds or HTTP date) into seconds. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return secs;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

import { UpstreamError } from '../errors.ts';

export const MAX_ATTEMPTS = 5;
const BASE_MS = 2_000;
const CAP_MS = 5 * 60_000;

/**
 * How long to wait before retrying after `err`, or null when retrying cannot help.
 * Upstream Retry-After wins; otherwise exponential backoff with full jitter.
 */
export function retryDelayMs(err: unknown, attempt: number, random = Math.random): number | null {
  if (err instanceof UpstreamError) {
    if (!err.retryable) return null;
    if (err.retryAfterSeconds !== undefined) return Math.min(err.retryAfterSeconds * 1000, CAP_MS * 6);
  } else if (!isTransient(err)) {
    return null;
  }
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Network-level failures of stores and upstreams that are worth another try. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', '57P01', '53300'].includes(code);
}

import { AppError } from '../errors.ts';

/**
 * Per-caller token buckets: each caller may make `perMinute` requests a minute, in bursts of up to
 * a tenth of that (at least 10). The buckets live in this process; with several API processes each
 * enforces its own share. A refused request is a 429 whose Retry-After says when the next one fits.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;
  private readonly perMs: number;

  constructor(readonly perMinute: number, private readonly now: () => number = Date.now) {
    this.capacity = Math.max(10, Math.ceil(perMinute / 10));
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `key`, or throws a 429 AppError carrying the seconds to wait. */
  take(key: string): void {
    if (this.perMinute <= 0) return;
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: t };
    b.tokens = Math.min(this.capacity, b.tokens + (t - b.at) * this.perMs);
    b.at = t;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      throw new RateLimited(Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)));
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    // Forget callers that have been idle long enough to have a full bucket again.
    if (this.buckets.size > 10_000) {
      for (const [k, v] of this.buckets) if ((t - v.at) * this.perMs + v.tokens >= this.capacity) this.buckets.delete(k);
    }
  }
}

export class RateLimited extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, 'Too Many Requests', `too many searches; try again in ${retryAfterSeconds} s`);
  }
}

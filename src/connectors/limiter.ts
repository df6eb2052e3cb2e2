import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Requests in flight per upstream account (a Microsoft tenant, a Google service account, a
 * Confluence site), shared by every connector instance in the process: vendors throttle per
 * app+tenant, so two sources on one account must not each assume they own the budget. A 429/503
 * Retry-After pauses the whole account, not just the request that saw it.
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

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Services } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { metrics } from '../metrics.ts';
import type { SourceType } from '../types.ts';

/** A fresh clientState / channel token: 32 random bytes. Only its hash is stored. */
export const newSecret = () => randomBytes(32).toString('base64url');
export const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(presented: string | null | undefined, storedHash: string): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 4096) return false;
  const a = Buffer.from(hashSecret(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time comparison of two strings of any length (different lengths never match). */
export function sameSecret(presented: string | null | undefined, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && presented.length === expected.length;
}

/** `sha256=<hex>` HMAC of the raw body (Confluence webhook secrets, X-Hub-Signature). */
export function hmacMatches(signature: string | null | undefined, body: string, secret: string): boolean {
  if (typeof signature !== 'string') return false;
  const m = /^sha256=([0-9a-f]{64})$/i.exec(signature.trim());
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(body, 'utf8').digest();
  return timingSafeEqual(Buffer.from(m[1]!.toLowerCase(), 'hex'), expected);
}

export type Verdict = 'accepted' | 'rejected';

/**
 * Where every receiver hands a notification: counts it (Prometheus at once; the per-source totals
 * shown by GET /v1/sources/:id are written to the metadata store in batches, so a storm costs one
 * write a second, not one per notification), and turns an accepted one into a sync request. A
 * notification never carries anything into the index: it only ever asks for a pull.
 */
export class NotificationIntake {
  private readonly pending = new Map<string, { accepted: number; rejected: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly services: Services, private readonly flushEveryMs = 1000) {}

  /** Counts a verdict; `sourceId` null when the notification could not be tied to a source. */
  count(sourceId: string | null, type: SourceType, verdict: Verdict, n = 1): void {
    metrics.notifications.inc({ source_id: sourceId ?? 'unknown', source_type: type, outcome: verdict }, n);
    if (!sourceId) return;
    const p = this.pending.get(sourceId) ?? { accepted: 0, rejected: 0 };
    p[verdict] += n;
    this.pending.set(sourceId, p);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushEveryMs);
    this.timer.unref?.();
  }

  /** Accepted: the source syncs (debounced by the job layer). Never throws; failures are logged. */
  trigger(sourceId: string, notifiedAt: Date): Promise<void> {
    return this.services.jobs.requestSync(sourceId, notifiedAt).then(
      () => undefined,
      (err) => this.services.log.warn({ err: errorMessage(err), sourceId }, 'a notification could not schedule a sync'),
    );
  }

  /** Writes the buffered counts (also called on shutdown and by tests). */
  flush(): Promise<void> {
    const batch = [...this.pending];
    this.pending.clear();
    const at = this.services.now();
    this.flushing = this.flushing.then(async () => {
      for (const [sourceId, d] of batch) {
        await this.services.metadata.notifications.addCounts(sourceId, { ...d, at })
          .catch((err) => this.services.log.warn({ err: errorMessage(err), sourceId }, 'notification counts could not be stored'));
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

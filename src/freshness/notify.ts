import type { Services } from '../context.ts';
import { errorMessage, parseRetryAfter } from '../errors.ts';
import { sha256 } from '../indexer/hash.ts';
import type { Source } from '../types.ts';
import { webhookUrlOf } from './policy.ts';
import { publicAlert, publicEvent } from './service.ts';
import type { OutboxItem } from './ports.ts';

/** Attempts per event before it is given up (the failure stays visible in alert_outbox.last_error). */
export const MAX_DELIVERY_ATTEMPTS = 8;
const BASE_DELAY_MS = 30_000;
const MAX_DELAY_MS = 60 * 60_000;
/** A Retry-After longer than this is not honoured as such; the event waits this long instead. */
const MAX_RETRY_AFTER_MS = 6 * 60 * 60_000;
const TIMEOUT_MS = 10_000;
/** Longer than a delivery can take, so a row is never claimed twice while its request is in flight. */
const LEASE_MS = 5 * 60_000;
/** Events per request: a burst (a new policy flagging hundreds of documents) becomes a few messages. */
const EVENTS_PER_REQUEST = 50;
/** Events spelled out in the human-readable `text`; the rest are counted. */
const LINES_IN_TEXT = 15;

export interface DeliveryResult {
  delivered: number;
  failed: number;
  gaveUp: number;
}

/** Exponential backoff for the attempt that just failed (1-based), without jitter: few senders, few rows. */
export function backoffMs(attempt: number): number {
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt - 1));
}

/**
 * Sends due outbox events to their source's webhook. Each event is in exactly one request per
 * attempt and is marked delivered once a 2xx comes back, so it is sent again only if this process
 * dies between the response and that write. Failures wait (Retry-After when given, otherwise
 * exponential backoff) for a later call; client errors other than 408/429 are not retried.
 */
export async function deliverOutbox({ ctx, limit = 500, timeoutMs = TIMEOUT_MS, fetchImpl = fetch }: {
  ctx: Services; limit?: number; timeoutMs?: number; fetchImpl?: typeof fetch;
}): Promise<DeliveryResult> {
  const result: DeliveryResult = { delivered: 0, failed: 0, gaveUp: 0 };
  const alerts = ctx.alerts;
  const claimedAt = ctx.now();
  const items = await alerts.claimOutbox(claimedAt, new Date(claimedAt.getTime() + LEASE_MS), limit);
  if (items.length === 0) return result;

  const bySource = new Map<string, OutboxItem[]>();
  for (const item of items) bySource.set(item.sourceId, [...(bySource.get(item.sourceId) ?? []), item]);
  for (const [sourceId, group] of bySource) {
    const source = await ctx.metadata.sources.get(sourceId);
    const url = webhookUrlOf(source?.freshness);
    if (!source || !url) {
      await alerts.markFailed(group.map((i) => i.eventId), 'no webhook configured any more', null, ctx.now());
      result.gaveUp += group.length;
      continue;
    }
    for (let i = 0; i < group.length; i += EVENTS_PER_REQUEST) {
      const batch = group.slice(i, i + EVENTS_PER_REQUEST);
      const ids = batch.map((b) => b.eventId);
      const outcome = await post(fetchImpl, url, webhookPayload(source, batch, ctx.now()), ids, timeoutMs);
      const now = ctx.now();
      if (outcome.ok) {
        await alerts.markDelivered(ids, now);
        result.delivered += batch.length;
        continue;
      }
      const attempts = Math.max(...batch.map((b) => b.attempts));
      const wait = outcome.retryAfterSeconds !== undefined ? Math.min(outcome.retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS) : backoffMs(attempts);
      if (!outcome.retryable || attempts >= MAX_DELIVERY_ATTEMPTS) {
        await alerts.markFailed(ids, outcome.error, null, now);
        result.gaveUp += batch.length;
        ctx.log.warn({ sourceId, events: ids.length, err: outcome.error }, 'freshness webhook gave up');
      } else {
        await alerts.markFailed(ids, outcome.error, new Date(now.getTime() + wait), now);
        result.failed += batch.length;
        ctx.log.info({ sourceId, events: ids.length, err: outcome.error, retryInMs: wait }, 'freshness webhook will be retried');
      }
    }
  }
  return result;
}

type Outcome = { ok: true } | { ok: false; retryable: boolean; retryAfterSeconds?: number; error: string };

async function post(fetchImpl: typeof fetch, url: string, body: unknown, eventIds: string[], timeoutMs: number): Promise<Outcome> {
  try {
    const res = await fetchImpl(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'clearance-freshness',
        // Same events → same key, so a receiver can drop the rare duplicate after a crash.
        'idempotency-key': sha256(eventIds.join(',')).slice(0, 32),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return { ok: true };
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    return { ok: false, retryable, retryAfterSeconds: retryable ? parseRetryAfter(res.headers.get('retry-after')) : undefined, error: `HTTP ${res.status}` };
  } catch (err) {
    const timedOut = (err as { name?: string }).name === 'TimeoutError';
    return { ok: false, retryable: true, error: timedOut ? `no response within ${timeoutMs} ms` : errorMessage(err) };
  }
}

// ---- Message -----------------------------------------------------------------------------------

/** Slack mrkdwn control characters. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const link = (title: string, url: string | null) => (url && /^https?:\/\//i.test(url) ? `<${url}|${esc(title)}>` : esc(title));

function line(item: OutboxItem, now: Date): string {
  const { event: e, alert: a } = item;
  const what = link(a.title, a.url);
  const d = a.details ?? {};
  switch (e.type) {
    case 'opened':
      if (a.kind === 'document') {
        return `:warning: Past its review date: ${what} — ${publicAlert(a, now).ageDays} days since its last change (limit ${a.expectedMaxAgeDays})${a.owner ? `, owner ${esc(a.owner)}` : ''}`;
      }
      if (a.kind === 'index_lag') return `:hourglass: ${what} — ${Math.round(Number(d.lagSeconds ?? 0) / 3600)} h since the index was current`;
      return `:x: ${what} — ${String(d.consecutiveFailures ?? '')} failed runs in a row${d.lastError ? `: ${esc(String(d.lastError).slice(0, 200))}` : ''}`;
    case 'acknowledged': {
      const until = (e.details?.snoozedUntil as string | undefined)?.slice(0, 10);
      return `:ballot_box_with_check: Acknowledged by ${esc(e.actor ?? 'someone')}: ${what}${e.note ? ` — “${esc(e.note.slice(0, 300))}”` : ''}${until ? ` (snoozed until ${until})` : ''}`;
    }
    case 'reopened':
      return `:bell: Snooze ended and still past its limit: ${what}`;
    case 'resolved':
      return `:white_check_mark: Resolved (${esc(String(e.details?.reason ?? a.resolution ?? 'resolved'))}): ${what}`;
  }
}

/**
 * The request body: `text` for Slack-compatible incoming webhooks, and the structured events for
 * anything else (each with the alert as the API shows it).
 */
export function webhookPayload(source: Pick<Source, 'id' | 'name'>, items: OutboxItem[], now: Date) {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.event.type, (counts.get(i.event.type) ?? 0) + 1);
  const headline = [...counts].map(([type, n]) => `${n} ${type}`).join(', ');
  const lines = items.slice(0, LINES_IN_TEXT).map((i) => line(i, now));
  if (items.length > LINES_IN_TEXT) lines.push(`…and ${items.length - LINES_IN_TEXT} more`);
  return {
    text: `*Clearance freshness* — ${esc(source.name)}: ${headline}\n${lines.join('\n')}`,
    source: { id: source.id, name: source.name },
    events: items.map((i) => ({ ...publicEvent(i.event), alert: publicAlert(i.alert, now) })),
  };
}

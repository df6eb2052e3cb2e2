import type { Services } from '../context.ts';
import { scrapeSources } from '../metrics.ts';
import type { Source } from '../types.ts';
import { notificationAddress } from './lifecycle.ts';

/** Source types whose upstream pushes notifications to a receiver under PUBLIC_BASE_URL. */
const PUSHED = new Set(['sharepoint', 'google_drive', 'confluence']);

/**
 * The `notifications` block of GET /v1/sources/:id: whether notifications reach this source, the
 * receiver address, accepted and rejected counts, its subscriptions with their expiry, and how
 * long the last sync that answered a notification took to start and to finish.
 */
export async function notificationStatus(services: Services, source: Source) {
  const { metadata, config } = services;
  const [subs, counts, runs] = await Promise.all([
    metadata.notifications.subscriptions(source.id),
    metadata.notifications.counts(source.id),
    metadata.runs.list(source.id, 50),
  ]);
  const pushed = PUSHED.has(source.type) && !!config.PUBLIC_BASE_URL;
  const watched = source.type === 'filesystem' && source.config.watch === true;
  const last = runs.find((r) => r.notifiedAt && r.startedAt);
  const ms = (a: Date | null | undefined, b: Date | null | undefined) => (a && b ? Math.max(0, a.getTime() - b.getTime()) : null);
  return {
    enabled: (pushed || watched) && source.status === 'active' && source.enabled !== false,
    mode: watched ? 'watch' : pushed ? 'push' : 'off',
    address: pushed ? notificationAddress(config.PUBLIC_BASE_URL!, source.type) + (source.type === 'confluence' ? `?source=${source.id}` : '') : null,
    accepted: counts.accepted,
    rejected: counts.rejected,
    lastAcceptedAt: counts.lastAcceptedAt,
    lastRejectedAt: counts.lastRejectedAt,
    subscriptions: subs.map((s) => ({
      id: s.id, kind: s.kind, resource: s.resource, status: s.status, expiresAt: s.expiresAt, createdAt: s.createdAt, renewedAt: s.renewedAt, lastError: s.lastError,
    })),
    lastNotifiedSync: last ? {
      runId: last.id,
      status: last.status,
      notifiedAt: last.notifiedAt,
      notificationToStartMs: ms(last.startedAt, last.notifiedAt),
      notificationToEndMs: last.status === 'succeeded' ? ms(last.finishedAt, last.notifiedAt) : null,
    } : null,
  };
}

/** /metrics reads subscription expiry from this process's metadata store at scrape time. */
export function exposeSubscriptionExpiry(services: Services): void {
  scrapeSources.subscriptions = () => services.metadata.notifications.subscriptions();
}

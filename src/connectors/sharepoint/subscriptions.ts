import type { ChangeWatch, WatchHandle } from '../interface.ts';
import { GraphError, type GraphApi } from './graph.ts';

/**
 * Graph allows a driveItem subscription up to 42,300 minutes (just under 30 days); asking for a
 * little less leaves room for clock differences.
 */
export const DRIVE_SUBSCRIPTION_MAX_MS = 42_000 * 60_000;

interface GraphSubscription {
  id: string;
  resource: string;
  expirationDateTime: string;
}

const enc = encodeURIComponent;

/**
 * One Graph subscription per synced drive, on `updated` of the drive root — the only change type
 * driveItems support, and it fires for any change below the root, including sharing changes.
 * Lifecycle notifications go to the same receiver. The subscription's clientState is the secret
 * the receiver checks; Graph validates the notification URL while the POST is in flight.
 */
export function graphChangeWatch(graph: GraphApi, driveIds: () => Promise<string[]>): ChangeWatch {
  return {
    kind: 'graph',
    maxLifetimeMs: DRIVE_SUBSCRIPTION_MAX_MS,
    resources: driveIds,
    async create(driveId, { address, secret, expiresAt }) {
      const sub = await graph.write<GraphSubscription>('POST', '/subscriptions', {
        changeType: 'updated',
        notificationUrl: address,
        lifecycleNotificationUrl: address,
        resource: `/drives/${enc(driveId)}/root`,
        expirationDateTime: expiresAt.toISOString(),
        clientState: secret,
      });
      if (!sub?.id) throw new GraphError('Graph created a subscription without an id', { retryable: true });
      return { externalId: sub.id, resource: driveId, expiresAt: new Date(sub.expirationDateTime) };
    },
    async renew(handle: WatchHandle, expiresAt: Date) {
      const sub = await graph.write<GraphSubscription>('PATCH', `/subscriptions/${enc(handle.externalId)}`, { expirationDateTime: expiresAt.toISOString() });
      return { expiresAt: sub?.expirationDateTime ? new Date(sub.expirationDateTime) : expiresAt };
    },
    async remove(handle: WatchHandle) {
      try {
        await graph.write('DELETE', `/subscriptions/${enc(handle.externalId)}`);
      } catch (err) {
        if (err instanceof GraphError && err.status === 404) return;
        throw err;
      }
    },
  };
}

import type { NotificationSubscription } from '../metadata/interface.ts';
import { secretMatches, type NotificationIntake } from './intake.ts';
import type { Reply } from './sharepoint.ts';

/** Resource states Drive sends for a changes.watch channel (files.watch adds the others). */
const STATES = new Set(['sync', 'change', 'add', 'remove', 'update', 'trash', 'untrash']);

/**
 * Google Drive push notifications (`/v1/notifications/google_drive`): an empty POST whose headers
 * say which channel fired. `X-Goog-Channel-ID` must name a channel this service opened,
 * `X-Goog-Channel-Token` must be its token (constant-time against the stored hash) and
 * `X-Goog-Resource-ID` the resource Drive gave the channel. The first message of a channel,
 * `X-Goog-Resource-State: sync`, only confirms it; every other state requests an incremental sync.
 */
export async function receiveDrive(
  deps: { intake: NotificationIntake; lookup: (kind: string, externalId: string) => Promise<NotificationSubscription | null>; now: () => Date; limit: (sourceId: string) => number | null },
  headers: (name: string) => string | undefined,
): Promise<Reply> {
  const channelId = headers('x-goog-channel-id');
  const state = headers('x-goog-resource-state');
  const sub = channelId && channelId.length <= 200 ? await deps.lookup('drive', channelId) : null;
  const resourceId = headers('x-goog-resource-id');
  const expectedResource = typeof sub?.data.resourceId === 'string' ? sub.data.resourceId : null;
  if (!sub || !state || !STATES.has(state) || !secretMatches(headers('x-goog-channel-token'), sub.secretHash)
    || (expectedResource !== null && resourceId !== expectedResource)) {
    deps.intake.count(sub?.sourceId ?? null, 'google_drive', 'rejected');
    return { status: 403, detail: 'not a message of a known channel with its token' };
  }
  const wait = deps.limit(sub.sourceId);
  if (wait !== null) return { status: 429, detail: 'too many notifications for this source', retryAfterSeconds: wait };
  deps.intake.count(sub.sourceId, 'google_drive', 'accepted');
  if (state !== 'sync') void deps.intake.trigger(sub.sourceId, deps.now());
  return { status: 200 };
}

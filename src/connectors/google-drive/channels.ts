import type { ChangeWatch, WatchHandle } from '../interface.ts';
import { GoogleApiError, type GoogleApi } from './api.ts';
import type { Unit } from './units.ts';

/**
 * Drive caps a `changes` channel at one week; a day keeps renewals frequent enough that a channel
 * lost without notice (Drive sends no lifecycle messages) is noticed the same day.
 */
export const CHANNEL_LIFETIME_MS = 24 * 3600_000;

/**
 * One `changes.watch` channel per unit of the source (a shared drive, or the My Drive of the user
 * whose folders are synced), opened as the unit's reader from the current start page token.
 * Drive channels cannot be extended: renewal opens a new channel and stops the old one
 * (`channels.stop` with the channel id and the resourceId Drive gave it, as the same user).
 */
export function driveChangeWatch(api: GoogleApi, units: () => Promise<Unit[]>): ChangeWatch {
  let known = new Map<string, Unit>();
  const unitOf = async (key: string) => {
    if (!known.has(key)) known = new Map((await units()).map((u) => [u.key, u]));
    const u = known.get(key);
    if (!u) throw new GoogleApiError(`the unit ${key} is no longer part of the source`, { retryable: false });
    return u;
  };
  return {
    kind: 'drive',
    maxLifetimeMs: CHANNEL_LIFETIME_MS,
    async resources() {
      const list = await units();
      known = new Map(list.map((u) => [u.key, u]));
      return list.map((u) => u.key);
    },
    async create(key, { id, address, secret, expiresAt }) {
      const unit = await unitOf(key);
      const driveId = unit.driveId ?? undefined;
      const start = await api.call(`start page token of "${unit.name}"`, unit.reader, () =>
        api.drive(unit.reader).changes.getStartPageToken({ supportsAllDrives: true, driveId }, api.options()));
      if (!start.startPageToken) throw new GoogleApiError(`no start page token for "${unit.name}"`, { retryable: true });
      const channel = await api.call(`changes.watch on "${unit.name}"`, unit.reader, () =>
        api.drive(unit.reader).changes.watch({
          pageToken: start.startPageToken!, driveId, supportsAllDrives: true, includeItemsFromAllDrives: true,
          requestBody: { id, type: 'web_hook', address, token: secret, expiration: String(expiresAt.getTime()) },
        }, api.options()));
      if (!channel.id || !channel.resourceId) throw new GoogleApiError('Drive opened a channel without an id or resourceId', { retryable: true });
      return {
        externalId: channel.id,
        resource: key,
        expiresAt: channel.expiration ? new Date(Number(channel.expiration)) : expiresAt,
        data: { resourceId: channel.resourceId, reader: unit.reader },
      };
    },
    async remove(handle: WatchHandle) {
      const reader = typeof handle.data?.reader === 'string' ? handle.data.reader : undefined;
      try {
        await api.call(`channels.stop ${handle.externalId}`, reader ?? '', () =>
          api.drive(reader).channels.stop({ requestBody: { id: handle.externalId, resourceId: String(handle.data?.resourceId ?? '') } }, api.options()));
      } catch (err) {
        if (err instanceof GoogleApiError && err.status === 404) return;
        throw err;
      }
    },
  };
}

import { randomUUID } from 'node:crypto';
import type { Services } from '../context.ts';
import type { ChangeWatch, WatchHandle } from '../connectors/interface.ts';
import { errorMessage } from '../errors.ts';
import type { NotificationSubscription } from '../metadata/interface.ts';
import { openConnector } from '../sources/connector.ts';
import type { Source } from '../types.ts';
import { hashSecret, newSecret } from './intake.ts';

/** How often the renewer looks at every source's subscriptions (one renewer at a time across processes). */
export const RENEW_EVERY_MS = 60_000;
export const RENEWER_NAME = 'notification-subscriptions';

/** The receiver URL of a source type under PUBLIC_BASE_URL (which may carry a path prefix). */
export function notificationAddress(base: string, type: string): string {
  return `${base.replace(/\/+$/, '')}/v1/notifications/${type}`;
}

const handleOf = (s: NotificationSubscription): WatchHandle => ({ externalId: s.externalId, resource: s.resource, expiresAt: s.expiresAt ?? new Date(0), data: s.data });

/**
 * The lifecycle of a source's subscriptions and channels, kept in the metadata store:
 *  - created when the source is created (or when PUBLIC_BASE_URL is set, at the next pass);
 *  - renewed once a third of their lifetime is left (Graph: PATCH; Drive: a new channel, then the
 *    old one is stopped);
 *  - re-created after Graph removed one (`subscriptionRemoved`), after one expired, or when one
 *    is found missing — followed by an incremental sync, since changes may have gone unannounced;
 *  - removed upstream when the source is removed, paused or disabled, when a drive stops being
 *    synced, or when PUBLIC_BASE_URL changes or is unset.
 * Passes for one source are serialised in this process; across processes the renewer runs as one
 * repeatable job (BullMQ holds it to one worker), and a unique index keeps two processes creating
 * at once from both keeping a subscription for the same resource.
 */
export class SubscriptionManager {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly services: Services) {}

  /** Brings one source's subscriptions to what it needs now. Never throws: problems are logged. */
  ensure(source: Source, opts: { renew?: string } = {}): Promise<void> {
    return this.serial(source.id, () => this.ensureNow(source, opts)).catch((err) => {
      this.services.log.warn({ err: errorMessage(err), sourceId: source.id }, 'notification subscriptions could not be brought up to date');
    });
  }

  /** Every source (the renewer's pass). */
  async maintainAll(): Promise<void> {
    for (const source of await this.services.metadata.sources.list()) await this.ensure(source);
  }

  /** Graph asked for reauthorization: renew this one now. */
  async renewSoon(sub: NotificationSubscription): Promise<void> {
    const source = await this.services.metadata.sources.get(sub.sourceId);
    if (source) await this.ensure(source, { renew: sub.id });
  }

  /** The upstream dropped it: re-create, then sync what may have been missed. */
  async replace(sub: NotificationSubscription, reason: string): Promise<void> {
    await this.services.metadata.notifications.updateSubscription(sub.id, { status: 'removed', lastError: reason });
    const source = await this.services.metadata.sources.get(sub.sourceId);
    if (source) await this.ensure(source);
  }

  /** Removes every subscription of the source upstream and in the store (source removed or disabled). */
  removeAll(source: Source): Promise<void> {
    return this.serial(source.id, async () => {
      const subs = await this.services.metadata.notifications.subscriptions(source.id);
      if (!subs.length) return;
      const watch = await this.watchOf(source).catch(() => undefined);
      for (const s of subs) await this.removeOne(watch, s);
    }).catch((err) => this.services.log.warn({ err: errorMessage(err), sourceId: source.id }, 'notification subscriptions could not be removed'));
  }

  private async ensureNow(source: Source, opts: { renew?: string }): Promise<void> {
    const { metadata, config } = this.services;
    const store = metadata.notifications;
    const subs = await store.subscriptions(source.id);
    const base = config.PUBLIC_BASE_URL;
    if (!base || source.status !== 'active' || source.enabled === false) {
      if (subs.length) {
        const watch = await this.watchOf(source).catch(() => undefined);
        for (const s of subs) await this.removeOne(watch, s);
      }
      return;
    }
    const watch = await this.watchOf(source);
    if (!watch) return;
    const address = notificationAddress(base, source.type);
    const wanted = new Set(await watch.resources());
    for (const s of subs) {
      if (!wanted.has(s.resource) || s.address !== address || s.kind !== watch.kind) await this.removeOne(watch, s);
    }
    const now = this.services.now().getTime();
    for (const resource of wanted) {
      const mine = subs.filter((s) => s.resource === resource && s.kind === watch.kind && s.address === address);
      const live = mine.find((s) => s.status === 'active' && s.expiresAt && s.expiresAt.getTime() > now);
      if (live && live.id !== opts.renew && !this.due(live, now)) continue;
      if (live && watch.renew) {
        try {
          const { expiresAt } = await watch.renew(handleOf(live), new Date(now + watch.maxLifetimeMs));
          await store.updateSubscription(live.id, { expiresAt, renewedAt: new Date(now), lastError: null });
          continue;
        } catch (err) {
          this.services.log.warn({ err: errorMessage(err), sourceId: source.id, resource }, 'renewing a subscription failed; creating a new one');
        }
      }
      // Anything before this one that is no longer live (expired, removed upstream) may have missed changes.
      const missed = mine.some((s) => s !== live);
      await this.create(source, watch, resource, address, mine);
      if (missed) void this.services.jobs.requestSync(source.id, new Date(now)).catch(() => undefined);
    }
  }

  /** Renew once a third of its lifetime is left. */
  private due(s: NotificationSubscription, now: number): boolean {
    const since = (s.renewedAt ?? s.createdAt).getTime();
    const lifetime = Math.max(0, s.expiresAt!.getTime() - since);
    return s.expiresAt!.getTime() - now < lifetime / 3;
  }

  private async create(source: Source, watch: ChangeWatch, resource: string, address: string, previous: NotificationSubscription[]) {
    const store = this.services.metadata.notifications;
    const secret = newSecret();
    const id = randomUUID();
    const now = this.services.now();
    const handle = await watch.create(resource, { id, address, secret, expiresAt: new Date(now.getTime() + watch.maxLifetimeMs) });
    // The old ones step aside first: one live row per resource (unique index).
    for (const p of previous) if (p.status === 'active') await store.updateSubscription(p.id, { status: 'removed' });
    try {
      await store.saveSubscription({
        id, sourceId: source.id, kind: watch.kind, resource, externalId: handle.externalId, secretHash: hashSecret(secret), address,
        expiresAt: handle.expiresAt, status: 'active', data: handle.data ?? {}, lastError: null,
      });
    } catch (err) {
      // Another process created one for this resource at the same moment: keep theirs.
      await watch.remove(handle).catch(() => undefined);
      throw err;
    }
    for (const p of previous) await this.removeOne(watch, p);
  }

  private async removeOne(watch: ChangeWatch | undefined, s: NotificationSubscription) {
    if (watch && s.kind === watch.kind) {
      await watch.remove(handleOf(s)).catch((err) => this.services.log.info({ err: errorMessage(err), sourceId: s.sourceId }, 'an old subscription could not be removed upstream'));
    }
    await this.services.metadata.notifications.deleteSubscription(s.id);
  }

  private async watchOf(source: Source): Promise<ChangeWatch | undefined> {
    return (await openConnector(this.services, source)).watch;
  }

  private serial<T>(sourceId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(sourceId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.chains.set(sourceId, tail);
    void tail.then(() => { if (this.chains.get(sourceId) === tail) this.chains.delete(sourceId); });
    return next;
  }
}

const managers = new WeakMap<object, SubscriptionManager>();

/** The process's manager for these services (request contexts share their services' stores). */
export function subscriptionManager(services: Services): SubscriptionManager {
  let m = managers.get(services.metadata);
  if (!m) managers.set(services.metadata, (m = new SubscriptionManager(services)));
  return m;
}

import type { Alert, AlertFacts, AlertKind, AlertStore, NewEvent } from './ports.ts';

/** One subject as an evaluation saw it: `facts` when the condition holds (stale, lagging…), else null. */
export interface Observation {
  subject: string;
  facts: AlertFacts | null;
}

export interface ReconcileCounts {
  opened: number;
  reopened: number;
  resolved: number;
}

export const emptyCounts = (): ReconcileCounts => ({ opened: 0, reopened: 0, resolved: 0 });
export const addCounts = (a: ReconcileCounts, b: ReconcileCounts) => {
  a.opened += b.opened;
  a.reopened += b.reopened;
  a.resolved += b.resolved;
};

/**
 * Age alone is not a change worth a write: it moves every day for every open alert, the API
 * computes it from lastModified, and resolving stores the final value.
 */
const sameFacts = (a: Alert, f: AlertFacts) =>
  a.title === f.title && a.url === f.url && a.owner === f.owner &&
  (a.lastModified?.getTime() ?? null) === (f.lastModified?.getTime() ?? null) &&
  a.expectedMaxAgeDays === f.expectedMaxAgeDays && JSON.stringify(a.details) === JSON.stringify(f.details);

/**
 * Brings the alerts of a batch of subjects in line with what was observed, in one transaction:
 * opens, refreshes, re-opens after a snooze, resolves; and appends one event (plus its outbox row
 * when the source has a webhook) for each state change that this call actually made. Each write
 * is conditional on the alert's current status, so two evaluations racing cannot both record
 * the same change.
 */
export async function reconcile(
  store: AlertStore,
  input: {
    kind: AlertKind;
    observations: Observation[];
    now: Date;
    notifySources: ReadonlySet<string>;
    resolveReason: (alert: Alert) => string;
    /** Event details for a newly opened alert (what the limit was, how far past it). */
    openDetails?: (facts: AlertFacts) => Record<string, unknown> | null;
  },
): Promise<ReconcileCounts> {
  const { kind, observations, now } = input;
  if (observations.length === 0) return emptyCounts();
  return store.atomically(async (tx) => {
    const live = await tx.live(kind, observations.map((o) => o.subject));
    const toOpen: AlertFacts[] = [];
    const toRefresh: { id: string; facts: AlertFacts }[] = [];
    const toReopen: string[] = [];
    const toResolve: { id: string; reason: string }[] = [];
    for (const o of observations) {
      const alert = live.get(o.subject);
      if (o.facts) {
        if (!alert) toOpen.push(o.facts);
        else {
          if (!sameFacts(alert, o.facts)) toRefresh.push({ id: alert.id, facts: o.facts });
          if (alert.status === 'acknowledged' && alert.snoozedUntil && alert.snoozedUntil <= now) toReopen.push(alert.id);
        }
      } else if (alert) {
        toResolve.push({ id: alert.id, reason: input.resolveReason(alert) });
      }
    }
    const events: NewEvent[] = [];
    for (const a of await tx.open(kind, toOpen, now)) {
      events.push({ alert: a, type: 'opened', at: now, actor: 'system', details: input.openDetails?.(a) ?? null });
    }
    await tx.refresh(toRefresh, now);
    for (const a of await tx.reopenSnoozed(now, toReopen)) {
      events.push({ alert: a, type: 'reopened', at: now, actor: 'system', details: { reason: 'snooze ended' } });
    }
    for (const a of await tx.resolve(toResolve, now)) {
      events.push({ alert: a, type: 'resolved', at: now, actor: 'system', details: { reason: a.resolution } });
    }
    await tx.recordEvents(events, input.notifySources);
    return {
      opened: events.filter((e) => e.type === 'opened').length,
      reopened: events.filter((e) => e.type === 'reopened').length,
      resolved: events.filter((e) => e.type === 'resolved').length,
    };
  });
}

/** Resolves the given live alerts with one reason (document deleted, policy exempts everything). */
export async function resolveWithReason(
  store: AlertStore, ids: string[], reason: string, now: Date, notifySources: ReadonlySet<string>,
): Promise<number> {
  if (ids.length === 0) return 0;
  return store.atomically(async (tx) => {
    const resolved = await tx.resolve(ids.map((id) => ({ id, reason })), now);
    await tx.recordEvents(resolved.map((a) => ({ alert: a, type: 'resolved' as const, at: now, actor: 'system', details: { reason } })), notifySources);
    return resolved.length;
  });
}

/** Every acknowledged alert whose snooze has ended, across sources (the periodic tick). */
export async function reopenExpiredSnoozes(store: AlertStore, now: Date, notifySources: ReadonlySet<string>): Promise<number> {
  return store.atomically(async (tx) => {
    const reopened = await tx.reopenSnoozed(now);
    await tx.recordEvents(reopened.map((a) => ({ alert: a, type: 'reopened' as const, at: now, actor: 'system', details: { reason: 'snooze ended' } })), notifySources);
    return reopened.length;
  });
}

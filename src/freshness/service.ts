import type { RequestContext, Services } from '../context.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { sourceLag } from './lag.ts';
import { notifySourcesOf } from './policy.ts';
import type { Alert, AlertEvent, AlertKind, AlertStatus } from './ports.ts';

const DAY = 86_400_000;

export interface PublicAlert {
  id: string;
  kind: AlertKind;
  documentId: string | null;
  sourceId: string;
  title: string;
  url: string | null;
  owner?: string;
  lastModified: string | null;
  expectedMaxAgeDays: number | null;
  ageDays: number | null;
  status: AlertStatus;
  firstFlaggedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  note: string | null;
  snoozedUntil: string | null;
  resolvedAt: string | null;
  resolution: string | null;
  details: Record<string, unknown> | null;
}

/**
 * The API shape. A live alert's age is computed now (the stored value is as of the last
 * evaluation); a resolved alert keeps the age it had when it was resolved.
 */
export function publicAlert(a: Alert, now: Date): PublicAlert {
  const live = a.status !== 'resolved' && a.lastModified !== null;
  return {
    id: a.id,
    kind: a.kind,
    documentId: a.documentId,
    sourceId: a.sourceId,
    title: a.title,
    url: a.url,
    ...(a.owner ? { owner: a.owner } : {}),
    lastModified: a.lastModified?.toISOString() ?? null,
    expectedMaxAgeDays: a.expectedMaxAgeDays,
    ageDays: live ? Math.max(0, Math.floor((now.getTime() - a.lastModified!.getTime()) / DAY)) : a.ageDays,
    status: a.status,
    firstFlaggedAt: a.firstFlaggedAt.toISOString(),
    acknowledgedAt: a.acknowledgedAt?.toISOString() ?? null,
    acknowledgedBy: a.acknowledgedBy,
    note: a.note,
    snoozedUntil: a.snoozedUntil?.toISOString() ?? null,
    resolvedAt: a.resolvedAt?.toISOString() ?? null,
    resolution: a.resolution,
    details: a.details,
  };
}

export function publicEvent(e: AlertEvent) {
  return { id: e.id, type: e.type, at: e.at.toISOString(), actor: e.actor, note: e.note, details: e.details };
}

// Opaque keyset cursor: the (firstFlaggedAt, id) of the last alert of the previous page.
export function encodeCursor(a: Alert): string {
  return Buffer.from(JSON.stringify([a.firstFlaggedAt.toISOString(), a.id])).toString('base64url');
}

function decodeCursor(cursor: string): { firstFlaggedAt: Date; id: string } {
  try {
    const [t, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const at = new Date(t);
    if (typeof id !== 'string' || Number.isNaN(at.getTime())) throw new Error('bad cursor');
    return { firstFlaggedAt: at, id };
  } catch {
    throw badRequest('cursor: not a cursor returned by this endpoint');
  }
}

export interface AlertListInput {
  status?: AlertStatus;
  sourceId?: string;
  kind?: AlertKind;
  limit: number;
  cursor?: string;
}

export async function listAlertPage({ ctx, input }: { ctx: Services; input: AlertListInput }) {
  const rows = await ctx.alerts.list({
    status: input.status, sourceId: input.sourceId, kind: input.kind, limit: input.limit + 1,
    after: input.cursor ? decodeCursor(input.cursor) : undefined,
  });
  const page = rows.slice(0, input.limit);
  return { alerts: page, nextCursor: rows.length > input.limit ? encodeCursor(page[page.length - 1]!) : null };
}

/** Every matching alert, a page at a time (CSV export of a large backlog without holding it all). */
export async function* allAlerts(ctx: Services, input: Omit<AlertListInput, 'limit' | 'cursor'>, pageSize = 1000): AsyncGenerator<Alert[]> {
  let cursor: string | undefined;
  for (;;) {
    const { alerts, nextCursor } = await listAlertPage({ ctx, input: { ...input, limit: pageSize, cursor } });
    if (alerts.length > 0) yield alerts;
    if (!nextCursor) return;
    cursor = nextCursor;
  }
}

export async function alertWithHistory({ ctx, id }: { ctx: Services; id: string }) {
  const alert = await ctx.alerts.get(id);
  if (!alert) throw notFound('Alert');
  const history = await ctx.alerts.history(id);
  return { ...publicAlert(alert, ctx.now()), history: history.map(publicEvent) };
}

/**
 * A person has looked at the alert. With a snooze it re-opens when the snooze ends if the
 * document is still stale; without one it stays acknowledged until resolved.
 */
export async function acknowledge({ ctx, input }: { ctx: RequestContext; input: { id: string; note: string; snoozeDays?: number } }) {
  const existing = await ctx.alerts.get(input.id);
  if (!existing) throw notFound('Alert');
  if (existing.status === 'resolved') throw conflict('the alert is already resolved');
  const source = await ctx.metadata.sources.get(existing.sourceId);
  const now = ctx.now();
  const snoozedUntil = input.snoozeDays ? new Date(now.getTime() + input.snoozeDays * DAY) : null;
  const actor = ctx.caller.email ?? (ctx.caller.kind === 'admin-token' ? 'admin-token' : 'unknown');
  const updated = await ctx.alerts.atomically(async (tx) => {
    const row = await tx.acknowledge({ id: input.id, actor, note: input.note, snoozedUntil, now });
    if (!row) return null;
    await tx.recordEvents([{
      alert: row, type: 'acknowledged', at: now, actor, note: input.note,
      details: snoozedUntil ? { snoozedUntil: snoozedUntil.toISOString(), snoozeDays: input.snoozeDays } : null,
    }], notifySourcesOf(source ? [source] : []));
    return row;
  });
  // Resolved between the read and the write.
  if (!updated) throw conflict('the alert is already resolved');
  return publicAlert(updated, now);
}

/** Counts by source and status, each source's index lag, and the oldest stale documents. */
export async function freshnessSummary({ ctx, oldest = 10 }: { ctx: Services; oldest?: number }) {
  const now = ctx.now();
  const [sources, counts, oldestAlerts] = await Promise.all([
    ctx.metadata.sources.list(),
    ctx.alerts.countsBySource(),
    ctx.alerts.oldestLiveDocuments(oldest),
  ]);
  const zero = () => ({ open: 0, acknowledged: 0, resolved: 0 });
  const totals = zero();
  const bySource = new Map<string, { documents: ReturnType<typeof zero>; indexLag: ReturnType<typeof zero>; syncFailing: ReturnType<typeof zero> }>();
  for (const c of counts) {
    const entry = bySource.get(c.sourceId) ?? { documents: zero(), indexLag: zero(), syncFailing: zero() };
    const bucket = c.kind === 'document' ? entry.documents : c.kind === 'index_lag' ? entry.indexLag : entry.syncFailing;
    bucket[c.status] += c.n;
    totals[c.status] += c.n;
    bySource.set(c.sourceId, entry);
  }
  const perSource = [];
  for (const s of sources) {
    const lag = await sourceLag(ctx, s);
    const entry = bySource.get(s.id) ?? { documents: zero(), indexLag: zero(), syncFailing: zero() };
    perSource.push({
      sourceId: s.id,
      name: s.name,
      status: s.status,
      alerts: entry,
      lag: {
        lastSuccessAt: lag.lastSuccessAt?.toISOString() ?? null,
        currentAsOf: lag.currentAsOf?.toISOString() ?? null,
        lagSeconds: lag.lagSeconds,
        thresholdSeconds: lag.thresholdSeconds,
        consecutiveFailures: lag.consecutiveFailures,
        lastRunStatus: lag.lastRunStatus,
      },
    });
  }
  return { generatedAt: now.toISOString(), totals, sources: perSource, oldest: oldestAlerts.map((a) => publicAlert(a, now)) };
}

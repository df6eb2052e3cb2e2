import type { Services } from '../context.ts';
import { errorMessage } from '../errors.ts';
import type { DocumentRecord, FreshnessPolicy } from '../types.ts';
import { evaluateLag } from './lag.ts';
import { deliverOutbox } from './notify.ts';
import { evaluateFreshness, notifySourcesOf } from './policy.ts';
import { addCounts, emptyCounts, reconcile, reopenExpiredSnoozes, resolveWithReason, type ReconcileCounts } from './reconcile.ts';
import type { Alert, AlertFacts } from './ports.ts';

/** Documents per page: bounds memory and the size of each batched alert write. */
export const PAGE_SIZE = 1000;

export interface SourceEvaluation extends ReconcileCounts {
  sourceId: string;
  documents: number;
  stale: number;
  exempt: number;
}

/** True when no document of the source can ever be stale under this policy. */
function exemptsEverything(policy: FreshnessPolicy | null): boolean {
  return !policy || (policy.maxAgeDays === null && (policy.rules ?? []).every((r) => r.maxAgeDays === null));
}

function documentFacts(doc: DocumentRecord, maxAgeDays: number, ageDays: number): AlertFacts {
  return {
    sourceId: doc.sourceId,
    documentId: doc.id,
    subject: doc.id,
    title: doc.title,
    url: doc.url,
    owner: doc.owner,
    lastModified: doc.lastModified,
    expectedMaxAgeDays: maxAgeDays,
    ageDays,
    details: doc.path ? { path: doc.path } : null,
  };
}

/** A document that left its alert behind was either updated (its change time moved) or the limit changed. */
const documentResolution = (byId: Map<string, DocumentRecord>) => (alert: Alert) => {
  const doc = alert.documentId ? byId.get(alert.documentId) : undefined;
  if (doc && alert.lastModified && doc.lastModified.getTime() !== alert.lastModified.getTime()) return 'updated';
  return 'policy';
};

/**
 * Evaluates every live document of one source against its policy and reconciles its document
 * alerts. Pages through the registry by id, so memory stays flat however large the source is;
 * each page's alert changes are one transaction.
 */
export async function evaluateSource({ ctx, sourceId, signal }: { ctx: Pick<Services, 'metadata' | 'alerts' | 'now'>; sourceId: string; signal?: AbortSignal }): Promise<SourceEvaluation> {
  const result: SourceEvaluation = { sourceId, documents: 0, stale: 0, exempt: 0, ...emptyCounts() };
  const source = await ctx.metadata.sources.get(sourceId);
  if (!source || source.status === 'deleting') return result;
  const now = ctx.now();
  const alerts = ctx.alerts;
  const notify = notifySourcesOf([source]);
  const policy = source.freshness;

  if (exemptsEverything(policy)) {
    // Nothing can be stale: skip the scan and only close what earlier policies opened.
    for (let after: string | null = null; ;) {
      const ids = await alerts.liveIds(sourceId, 'document', after, PAGE_SIZE);
      if (ids.length === 0) break;
      result.resolved += await resolveWithReason(alerts, ids, 'policy', now, notify);
      after = ids[ids.length - 1]!;
    }
  } else {
    let afterId: string | undefined;
    for (;;) {
      if (signal?.aborted) return result;
      const docs = await ctx.metadata.documents.list({ sourceId, afterId, limit: PAGE_SIZE });
      if (docs.length === 0) break;
      afterId = docs[docs.length - 1]!.id;
      result.documents += docs.length;
      const observations = docs.map((doc) => {
        const v = evaluateFreshness(policy, doc, now);
        if (v.maxAgeDays === null) result.exempt++;
        if (v.status !== 'stale') return { subject: doc.id, facts: null };
        result.stale++;
        return { subject: doc.id, facts: documentFacts(doc, v.maxAgeDays!, v.ageDays) };
      });
      const byId = new Map(docs.map((d) => [d.id, d]));
      addCounts(result, await reconcile(alerts, {
        kind: 'document', observations, now, notifySources: notify,
        resolveReason: documentResolution(byId),
        openDetails: (f) => ({ reason: 'past its review date', ageDays: f.ageDays, expectedMaxAgeDays: f.expectedMaxAgeDays }),
      }));
      if (docs.length < PAGE_SIZE) break;
    }
  }

  // Documents the indexer hard-deleted no longer show up in the scan; their alerts end here.
  for (;;) {
    const orphans = await alerts.orphanedDocumentAlerts(sourceId, PAGE_SIZE);
    if (orphans.length === 0) break;
    result.resolved += await resolveWithReason(alerts, orphans, 'deleted', now, notify);
  }
  return result;
}

// ---- Serialisation and triggers --------------------------------------------------------------

interface Chain {
  tail: Promise<unknown>;
  /** An evaluation requested but not started yet: later requests join it instead of queueing more. */
  pending: Promise<SourceEvaluation> | null;
}
const chains = new Map<string, Chain>();
const background = new Set<Promise<unknown>>();

/**
 * One evaluation per source at a time in this process; requests arriving while one runs are
 * coalesced into a single follow-up run (which sees everything the requests were about).
 * Evaluations in other processes are safe too, only wasteful: every alert write is conditional.
 */
export function evaluateSourceSerialized(ctx: Services, sourceId: string, signal?: AbortSignal): Promise<SourceEvaluation> {
  const chain = chains.get(sourceId) ?? { tail: Promise.resolve(), pending: null };
  if (chain.pending) return chain.pending;
  const run = chain.tail.catch(() => undefined).then(() => {
    chain.pending = null;
    return evaluateSource({ ctx, sourceId, signal });
  });
  chain.pending = run;
  chain.tail = run;
  chains.set(sourceId, chain);
  void run.catch(() => undefined).finally(() => {
    if (chains.get(sourceId)?.tail === run) chains.delete(sourceId);
  });
  return run;
}

function track<T>(p: Promise<T>): Promise<T> {
  background.add(p);
  void p.catch(() => undefined).finally(() => background.delete(p));
  return p;
}

/** Resolves once no evaluation or delivery started by this process is running (tests, demo). */
export async function freshnessIdle(): Promise<void> {
  while (chains.size > 0 || background.size > 0) {
    await Promise.allSettled([...[...chains.values()].map((c) => c.tail), ...background]);
  }
}

/**
 * Called when a sync of the source succeeded: document alerts and the source's lag alerts are
 * brought up to date before the caller moves on, notifications go out in the background. Never
 * throws: a freshness problem must not turn a good sync into a failed one.
 */
export async function afterSync(ctx: Services, sourceId: string, signal?: AbortSignal): Promise<void> {
  try {
    await evaluateSourceSerialized(ctx, sourceId, signal);
    await evaluateLag({ ctx, sourceId });
    void track(deliverOutbox({ ctx })).catch((err) => ctx.log.warn({ err: errorMessage(err) }, 'freshness notifications failed'));
  } catch (err) {
    ctx.log.warn({ err: errorMessage(err), sourceId }, 'freshness evaluation after sync failed');
  }
}

/** Re-evaluates a source in the background after its policy changed (no re-sync needed). */
export function triggerEvaluation(ctx: Services, sourceId: string): Promise<void> {
  return track((async () => {
    try {
      await evaluateSourceSerialized(ctx, sourceId);
      await deliverOutbox({ ctx });
    } catch (err) {
      ctx.log.warn({ err: errorMessage(err), sourceId }, 'freshness evaluation after a policy change failed');
    }
  })());
}

// ---- Jobs ------------------------------------------------------------------------------------

export interface FreshnessJobResult {
  sources: SourceEvaluation[];
  lag: ReconcileCounts;
  reopened: number;
  notifications: { delivered: number; failed: number; gaveUp: number };
}

/**
 * The repeatable freshness job (at least hourly): every document of every source, the index lag
 * of every source, expired snoozes, then pending notifications.
 */
export async function runFreshnessJob({ ctx, signal }: { ctx: Services; signal?: AbortSignal }): Promise<FreshnessJobResult> {
  const sources: SourceEvaluation[] = [];
  for (const source of await ctx.metadata.sources.list()) {
    if (signal?.aborted) break;
    if (source.status === 'deleting') continue;
    try {
      sources.push(await evaluateSourceSerialized(ctx, source.id, signal));
    } catch (err) {
      ctx.log.warn({ err: errorMessage(err), sourceId: source.id }, 'freshness evaluation failed');
    }
  }
  const tick = await runFreshnessTick({ ctx });
  return { sources, ...tick };
}

/**
 * The cheap, frequent part (every minute): lag and failing-sync alerts for every source, snoozes
 * that ended, and the notification outbox with its retries.
 */
export async function runFreshnessTick({ ctx }: { ctx: Services }): Promise<Omit<FreshnessJobResult, 'sources'>> {
  const lag = await evaluateLag({ ctx });
  const sources = await ctx.metadata.sources.list();
  const reopened = await reopenExpiredSnoozes(ctx.alerts, ctx.now(), notifySourcesOf(sources));
  const notifications = await deliverOutbox({ ctx });
  return { lag, reopened, notifications };
}

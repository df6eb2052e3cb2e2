import type { Services } from '../context.ts';
import type { Run, Source } from '../types.ts';
import { notifySourcesOf } from './policy.ts';
import { addCounts, emptyCounts, reconcile, type Observation, type ReconcileCounts } from './reconcile.ts';
import type { AlertFacts } from './ports.ts';

/** Finished runs in a row that failed before a sync_failing alert opens. */
export const FAILING_AFTER = 3;
/** Enough history to count failures and find the last success in all but pathological cases. */
const RUN_HISTORY = 50;

export interface SourceLag {
  sourceId: string;
  /** When the last successful sync finished. */
  lastSuccessAt: Date | null;
  /**
   * The index reflects the source at least as of this moment: the start of the last successful
   * sync (changes made upstream after it started may not have been picked up). Connectors cannot
   * yet report the oldest change still waiting upstream, so this is the bound we can give.
   */
  currentAsOf: Date | null;
  /** Seconds since `currentAsOf` (since the source was added when it never synced successfully). */
  lagSeconds: number;
  /** schedule × FRESHNESS_LAG_FACTOR; null when the source has no schedule (no lag expectation). */
  thresholdSeconds: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  lastRunStatus: Run['status'] | null;
}

export function computeLag(source: Source, runs: Run[], now: Date, lagFactor: number): SourceLag {
  const newestFirst = [...runs].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const lastSuccess = newestFirst.find((r) => r.status === 'succeeded') ?? null;
  let consecutiveFailures = 0;
  let lastError: string | null = null;
  for (const r of newestFirst) {
    // A queued or running run has not finished yet (it may be a retry of the failure before it).
    if (r.status === 'queued' || r.status === 'running') continue;
    if (r.status !== 'failed') break;
    if (consecutiveFailures === 0) lastError = r.error;
    consecutiveFailures++;
  }
  const currentAsOf = lastSuccess ? lastSuccess.startedAt ?? lastSuccess.finishedAt : null;
  const since = currentAsOf ?? source.createdAt;
  return {
    sourceId: source.id,
    lastSuccessAt: lastSuccess?.finishedAt ?? null,
    currentAsOf,
    lagSeconds: Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000)),
    thresholdSeconds: source.schedule ? source.schedule.intervalSeconds * lagFactor : null,
    consecutiveFailures,
    lastError,
    lastRunStatus: newestFirst[0]?.status ?? null,
  };
}

export async function sourceLag(ctx: Services, source: Source): Promise<SourceLag> {
  return computeLag(source, await ctx.metadata.runs.list(source.id, RUN_HISTORY), ctx.now(), ctx.config.FRESHNESS_LAG_FACTOR);
}

const DAY_S = 86_400;

function lagFacts(source: Source, lag: SourceLag): AlertFacts {
  return {
    sourceId: source.id,
    documentId: null,
    subject: source.id,
    title: `Index of "${source.name}" is behind its sync schedule`,
    url: null,
    owner: null,
    lastModified: lag.currentAsOf,
    expectedMaxAgeDays: null,
    ageDays: Math.floor(lag.lagSeconds / DAY_S),
    details: {
      lagSeconds: lag.lagSeconds,
      thresholdSeconds: lag.thresholdSeconds,
      lastSuccessAt: lag.lastSuccessAt?.toISOString() ?? null,
      currentAsOf: lag.currentAsOf?.toISOString() ?? null,
    },
  };
}

function failingFacts(source: Source, lag: SourceLag): AlertFacts {
  return {
    sourceId: source.id,
    documentId: null,
    subject: source.id,
    title: `Syncs of "${source.name}" keep failing`,
    url: null,
    owner: null,
    lastModified: lag.currentAsOf,
    expectedMaxAgeDays: null,
    ageDays: Math.floor(lag.lagSeconds / DAY_S),
    details: { consecutiveFailures: lag.consecutiveFailures, lastError: lag.lastError, lastSuccessAt: lag.lastSuccessAt?.toISOString() ?? null },
  };
}

/**
 * Opens or resolves `index_lag` (last success older than schedule × FRESHNESS_LAG_FACTOR) and
 * `sync_failing` (FAILING_AFTER finished runs in a row failed) alerts, for one source or all.
 * Paused sources are expected not to sync, so their lag alerts close.
 */
export async function evaluateLag({ ctx, sourceId }: { ctx: Services; sourceId?: string }): Promise<ReconcileCounts> {
  const all = sourceId ? [await ctx.metadata.sources.get(sourceId)].filter((s): s is Source => s !== null) : await ctx.metadata.sources.list();
  const sources = all.filter((s) => s.status !== 'deleting');
  const counts = emptyCounts();
  if (sources.length === 0) return counts;
  const now = ctx.now();
  const lagObs: Observation[] = [];
  const failObs: Observation[] = [];
  const byId = new Map(sources.map((s) => [s.id, s]));
  for (const source of sources) {
    const lag = await sourceLag(ctx, source);
    const active = source.status === 'active';
    const lagging = active && lag.thresholdSeconds !== null && lag.lagSeconds > lag.thresholdSeconds;
    lagObs.push({ subject: source.id, facts: lagging ? lagFacts(source, lag) : null });
    failObs.push({ subject: source.id, facts: active && lag.consecutiveFailures >= FAILING_AFTER ? failingFacts(source, lag) : null });
  }
  const notifySources = notifySourcesOf(sources);
  const reason = (caughtUp: string) => (a: { subject: string }) => {
    const s = byId.get(a.subject);
    return !s || s.status !== 'active' ? 'source paused' : caughtUp;
  };
  addCounts(counts, await reconcile(ctx.alerts, {
    kind: 'index_lag', observations: lagObs, now, notifySources,
    resolveReason: (a) => (byId.get(a.subject)?.schedule ? reason('caught up')(a) : 'no schedule'),
    openDetails: (f) => f.details,
  }));
  addCounts(counts, await reconcile(ctx.alerts, {
    kind: 'sync_failing', observations: failObs, now, notifySources,
    resolveReason: reason('sync succeeded'),
    openDetails: (f) => f.details,
  }));
  return counts;
}

import type { Services } from '../context.ts';
import { UpstreamError, errorMessage } from '../errors.ts';
import { afterSync } from '../freshness/evaluate.ts';
import { SyncAborted, runSync, type SyncReport } from '../indexer/sync.ts';
import { metrics } from '../metrics.ts';
import { openConnector } from '../sources/connector.ts';
import { ATTR, SpanKind, SpanStatusCode, inSpan } from '../telemetry/tracing.ts';
import type { MetadataStore } from '../metadata/interface.ts';
import { emptyStats, type Run } from '../types.ts';
import type { SyncJob, SyncOutcome, SyncWork } from './interface.ts';

/**
 * The one sync-job policy, used by every queue adapter: run status transitions, retry with
 * backoff, Retry-After, and when to give up. Adapters only translate its outcome into their queue's
 * operations, so the in-process runner and BullMQ cannot disagree.
 *
 * Status transitions of a run:  queued → running → succeeded | failed
 *                               running → queued   (retry scheduled, or shutdown hands it back)
 */

/** Failed attempts (not counting throttling) before a run is failed. */
export const MAX_ATTEMPTS = 5;
/** Upstream Retry-After waits allowed per run: Retry-After is honoured, not forever. */
export const MAX_THROTTLED = 20;
const BASE_MS = 2_000;
const CAP_MS = 5 * 60_000;
/** The longest Retry-After waited as asked; longer asks wait this long and try again. */
const MAX_RETRY_AFTER_MS = 30 * 60_000;

/** Network-level failures of stores and upstreams that are worth another try. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', '57P01', '53300']);
const isTransient = (err: unknown) => TRANSIENT_CODES.has(String((err as { code?: unknown } | null)?.code));

/** Exponential backoff with full jitter on the upper half: 1–2 s, 2–4 s, … capped at 5 min. */
export function backoffMs(attempt: number, random = Math.random): number {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * What to do after `err` ended an attempt of `job`. Upstream throttling (Retry-After) waits as long
 * as asked without using an attempt; other retryable errors back off and use one; anything that
 * retrying cannot fix (a non-retryable UpstreamError, a programming or configuration error) fails
 * at once.
 */
export function decide(err: unknown, job: SyncJob, random = Math.random): SyncOutcome {
  const message = errorMessage(err);
  if (err instanceof UpstreamError) {
    if (!err.retryable) return { kind: 'failed', error: message };
    if (err.retryAfterSeconds !== undefined) {
      if (job.throttled >= MAX_THROTTLED) return { kind: 'failed', error: `${message} (still throttled after ${MAX_THROTTLED} waits)` };
      const delayMs = Math.min(Math.max(0, err.retryAfterSeconds) * 1000, MAX_RETRY_AFTER_MS);
      return { kind: 'retry', delayMs, job: { ...job, throttled: job.throttled + 1 } };
    }
  } else if (!isTransient(err)) {
    return { kind: 'failed', error: message };
  }
  if (job.attempt + 1 >= MAX_ATTEMPTS) return { kind: 'failed', error: `${message} (gave up after ${MAX_ATTEMPTS} attempts)` };
  return { kind: 'retry', delayMs: backoffMs(job.attempt, random), job: { ...job, attempt: job.attempt + 1 } };
}

/**
 * The sync work every worker runs: opens the source's connector, runs the sync, records the run's
 * fate, and once a sync succeeded brings the source's freshness alerts up to date.
 */
export function createSyncWork(services: Services): SyncWork {
  const work = syncWork(services);
  // One trace per attempt of a run (a root span: the request that queued it has long answered);
  // the upstream calls it makes are its children.
  return (job, opts) => inSpan('sync.run', {
    kind: SpanKind.CONSUMER,
    root: true,
    attributes: { [ATTR.sourceId]: job.sourceId, [ATTR.runId]: job.runId, 'clearance.sync.attempt': job.attempt, 'clearance.sync.throttled': job.throttled },
  }, async (span) => {
    const outcome = await work(job, opts, (report, kind) => {
      const attrs: Record<string, number | string> = { 'clearance.sync.outcome': runFate(kind) };
      for (const [k, v] of Object.entries(report.stats)) attrs[`clearance.sync.stats.${k}`] = v;
      attrs['clearance.sync.warnings'] = report.warnings.length;
      span.setAttributes(attrs);
    }, (attrs) => span.setAttributes(attrs));
    if (outcome.kind === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    return outcome;
  });
}

/** The run's fate as the span names it: the run's status when it ended, else what happens next. */
const runFate = (kind: SyncOutcome['kind']) => (kind === 'done' ? 'succeeded' : kind);

function syncWork(services: Services) {
  const { metadata, log } = services;
  return async (
    job: SyncJob, { signal, onProgress }: Parameters<SyncWork>[1],
    onFinish: (report: SyncReport, kind: SyncOutcome['kind']) => void,
    annotate: (attrs: Record<string, string>) => void,
  ): Promise<SyncOutcome> => {
    const run = await metadata.runs.get(job.runId);
    // A job whose run is gone or over (source deleted, run failed elsewhere) has nothing to do.
    if (!run || run.status === 'succeeded' || run.status === 'failed') return { kind: 'done' };
    const report: SyncReport = { stats: emptyStats(), warnings: [] };
    const finish = async (outcome: SyncOutcome, lastError: string | null = null): Promise<SyncOutcome> => {
      const now = services.now();
      if (outcome.kind === 'done') {
        await metadata.runs.update(job.runId, { status: 'succeeded', finishedAt: now, error: null, stats: report.stats, warnings: report.warnings });
      } else if (outcome.kind === 'failed') {
        await metadata.runs.update(job.runId, { status: 'failed', finishedAt: now, error: outcome.error, stats: report.stats, warnings: report.warnings });
      } else {
        // A retry or a hand-back: the run waits in the queue (showing why, for a retry); its next
        // attempt starts its stats over.
        await metadata.runs.update(job.runId, { status: 'queued', finishedAt: null, error: lastError });
      }
      if (outcome.kind === 'done' || outcome.kind === 'failed') metrics.syncRuns.inc({ status: outcome.kind === 'done' ? 'succeeded' : 'failed' });
      onFinish(report, outcome.kind);
      return outcome;
    };

    const source = await metadata.sources.get(job.sourceId);
    if (!source) return finish({ kind: 'failed', error: `source ${job.sourceId} no longer exists` });
    // Disabled by an admin (kill switch): nothing of it is read until it is enabled again.
    if (!source.enabled) return finish({ kind: 'failed', error: 'source is disabled' });
    annotate({ [ATTR.sourceKind]: source.type, 'clearance.sync.mode': job.mode ?? run.mode });
    const runLog = log.child({ sourceId: source.id, runId: job.runId });
    const startedAt = services.now();
    await metadata.runs.update(job.runId, { status: 'running', startedAt, error: null });
    if (run.notifiedAt) metrics.notificationToStart.observe({ source_id: source.id }, Math.max(0, startedAt.getTime() - run.notifiedAt.getTime()) / 1000);
    try {
      const connector = await openConnector(services, source);
      await runSync({ ctx: services, input: { source, runId: job.runId, mode: job.mode ?? undefined, connector, report, signal, onProgress } });
    } catch (err) {
      if (err instanceof SyncAborted || signal.aborted) return finish({ kind: 'stopped' });
      const outcome = decide(err, job);
      if (outcome.kind === 'retry') runLog.info({ err: errorMessage(err), delayMs: outcome.delayMs, attempt: outcome.job.attempt, throttled: outcome.job.throttled }, 'sync will be retried');
      else runLog.warn({ err: errorMessage(err) }, 'sync failed');
      return finish(outcome, errorMessage(err));
    }
    await finish({ kind: 'done' });
    if (run.notifiedAt) metrics.notificationToEnd.observe({ source_id: source.id }, Math.max(0, services.now().getTime() - run.notifiedAt.getTime()) / 1000);
    runLog.info({ stats: report.stats }, 'sync finished');
    // Alerts are current when the run's job ends, not at the next hourly pass (never throws).
    await afterSync(services, source.id, signal);
    return { kind: 'done' };
  };
}

// ---- Change notifications: debounce and coalescing -----------------------------------------------

/** Makes sure `run` has its queue job, starting no earlier than `delayMs` from now. */
export type EnqueueRun = (run: Run, delayMs: number) => Promise<void>;

export type SyncRequestOutcome =
  /** A new incremental run, delayed by the debounce window. */
  | 'queued'
  /** A run that has not started yet covers it. */
  | 'coalesced'
  /** A run is going: exactly one follow-up runs after it (the pending request). */
  | 'follow-up'
  /** The source is gone or not active: nothing to do. */
  | 'ignored';

/**
 * Turns change notifications into syncs, the same way for every queue adapter:
 *  - the first notification for an idle source creates one incremental run that starts after the
 *    debounce window; notifications until it starts are covered by it (`coalesced`);
 *  - a notification while a run is going leaves one pending request per source in the metadata
 *    store (a second one only keeps the earlier time), and the run's end turns it into exactly one
 *    follow-up run (`drain`);
 *  - so a storm never has more than one run queued or running plus one pending per source.
 * Notifications only ever cause a pull; they carry nothing into the index.
 *
 * The request is written before the run state is read, and a run's end is recorded before its
 * drain reads the requests, so a notification racing a run's end is seen by one side or the other.
 */
export class SyncRequests {
  /** Sources whose queued run this process created and that cannot start before the time kept here. */
  private readonly notBefore = new Map<string, number>();
  /** Per source in this process: the request being handled and at most one waiting behind it. */
  private readonly slots = new Map<string, { tail: Promise<unknown>; waiting: { at: Date; promise: Promise<SyncRequestOutcome> } | null }>();

  constructor(
    private readonly deps: {
      metadata: MetadataStore;
      debounceMs: number;
      /** Serialises the store work of one source across processes (BullMQ: a Redis lock). */
      withLock?: <T>(sourceId: string, fn: () => Promise<T>) => Promise<T>;
    },
    private readonly enqueue: EnqueueRun,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * One notification. Concurrent ones for a source share a single store round trip: while one is
   * being handled, every later arrival joins the one request queued behind it, which starts after
   * they all arrived and so covers them.
   */
  request(sourceId: string, notifiedAt: Date): Promise<SyncRequestOutcome> {
    if (this.covered(sourceId)) return Promise.resolve('coalesced');
    let slot = this.slots.get(sourceId);
    if (!slot) this.slots.set(sourceId, (slot = { tail: Promise.resolve(), waiting: null }));
    if (slot.waiting) {
      if (notifiedAt < slot.waiting.at) slot.waiting.at = notifiedAt;
      return slot.waiting.promise;
    }
    const s = slot;
    const waiting = { at: notifiedAt, promise: null as unknown as Promise<SyncRequestOutcome> };
    waiting.promise = s.tail.then(async () => {
      if (s.waiting === waiting) s.waiting = null;
      if (this.covered(sourceId)) return 'coalesced' as const;
      return this.locked(sourceId, async () => {
        await this.deps.metadata.notifications.requestSync(sourceId, waiting.at);
        return this.drainNow(sourceId);
      });
    });
    s.waiting = waiting;
    s.tail = waiting.promise.catch(() => undefined);
    return waiting.promise;
  }

  /** Acts on the source's pending request, if any; adapters call it whenever a sync job ends. */
  drain(sourceId: string): Promise<SyncRequestOutcome> {
    this.notBefore.delete(sourceId);
    return this.locked(sourceId, () => this.drainNow(sourceId));
  }

  /** The run this process queued has started: notifications must reach the store again. */
  started(sourceId: string): void {
    this.notBefore.delete(sourceId);
  }

  /**
   * Storms: while the run this process queued is still inside its window it covers everything, and
   * no store round trip is needed. The margin keeps timer slack and clock granularity out of it.
   */
  private covered(sourceId: string): boolean {
    const until = this.notBefore.get(sourceId);
    return until !== undefined && this.clock() < until - 100;
  }

  private locked<T>(sourceId: string, fn: () => Promise<T>): Promise<T> {
    return this.deps.withLock ? this.deps.withLock(sourceId, fn) : fn();
  }

  private async drainNow(sourceId: string): Promise<SyncRequestOutcome> {
    const { metadata, debounceMs } = this.deps;
    const source = await metadata.sources.get(sourceId);
    if (!source || source.status !== 'active' || source.enabled === false) {
      if (source) await metadata.notifications.takeSyncRequest(sourceId);
      return 'ignored';
    }
    let active = await metadata.runs.active(sourceId);
    let created = false;
    if (!active) {
      // Nothing pending (handled elsewhere meanwhile): no run to create.
      if (!(await metadata.notifications.pendingSyncRequests()).includes(sourceId)) return 'coalesced';
      const cursor = await metadata.sources.cursor(sourceId);
      ({ run: active, created } = await metadata.runs.start(sourceId, cursor ? 'incremental' : 'full'));
    }
    // A running run may already have read past the change: the request waits for its end.
    if (active.status === 'running') return 'follow-up';
    const req = await metadata.notifications.takeSyncRequest(sourceId);
    if (req) await metadata.notifications.markRunNotified(active.id, req.notifiedAt);
    if (!created) return 'coalesced';
    this.notBefore.set(sourceId, this.clock() + debounceMs);
    await this.enqueue(active, debounceMs);
    return 'queued';
  }
}

import type { Services } from '../context.ts';
import { UpstreamError, errorMessage } from '../errors.ts';
import { afterSync } from '../freshness/evaluate.ts';
import { SyncAborted, runSync, type SyncReport } from '../indexer/sync.ts';
import { metrics } from '../metrics.ts';
import { openConnector } from '../sources/connector.ts';
import { emptyStats } from '../types.ts';
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
  const { metadata, log } = services;
  return async (job, { signal, onProgress }) => {
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
      return outcome;
    };

    const source = await metadata.sources.get(job.sourceId);
    if (!source) return finish({ kind: 'failed', error: `source ${job.sourceId} no longer exists` });
    // Disabled by an admin (kill switch): nothing of it is read until it is enabled again.
    if (!source.enabled) return finish({ kind: 'failed', error: 'source is disabled' });
    const runLog = log.child({ sourceId: source.id, runId: job.runId });
    await metadata.runs.update(job.runId, { status: 'running', startedAt: services.now(), error: null });
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
    runLog.info({ stats: report.stats }, 'sync finished');
    // Alerts are current when the run's job ends, not at the next hourly pass (never throws).
    await afterSync(services, source.id, signal);
    return { kind: 'done' };
  };
}

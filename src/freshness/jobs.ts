import type { Services } from '../context.ts';
import type { JobRunner } from '../jobs/interface.ts';
import { runFreshnessJob, runFreshnessTick } from './evaluate.ts';

/** Every document of every source: time alone turns documents stale, so at least hourly. */
export const FRESHNESS_EVERY_MS = 60 * 60_000;
/** Lag and failing-sync alerts, ended snoozes and webhook retries: cheap, so every minute. */
export const FRESHNESS_TICK_EVERY_MS = 60_000;

/**
 * Registers the freshness jobs with the runner (in-process, or BullMQ so that one worker runs
 * each tick). Evaluation after each completed sync is not a job: the sync-job policy calls it.
 */
export async function registerFreshnessJobs(jobs: JobRunner, ctx: Services): Promise<void> {
  await jobs.registerRepeatable('freshness', FRESHNESS_EVERY_MS, async () => {
    const result = await runFreshnessJob({ ctx });
    const opened = result.sources.reduce((n, s) => n + s.opened, 0) + result.lag.opened;
    const resolved = result.sources.reduce((n, s) => n + s.resolved, 0) + result.lag.resolved;
    ctx.log.info({ sources: result.sources.length, opened, resolved, notifications: result.notifications }, 'freshness evaluated');
  });
  await jobs.registerRepeatable('freshness-tick', FRESHNESS_TICK_EVERY_MS, async () => {
    await runFreshnessTick({ ctx });
  });
}

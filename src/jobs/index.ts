import type { JobRunner } from './interface.ts';
import { InProcessJobRunner, type QueueDeps } from './in-process.ts';

export type { JobRunner, RepeatableHandler, SyncJob, SyncOutcome, SyncWork } from './interface.ts';

/**
 * The queue this deployment uses: BullMQ when REDIS_URL is set (several API and worker processes
 * share it), otherwise in this process. A Redis that cannot be reached fails here, at start-up.
 */
export async function createJobRunner(deps: QueueDeps): Promise<JobRunner> {
  if (!deps.config.REDIS_URL) return new InProcessJobRunner(deps);
  // Loaded only when configured: BullMQ opens Redis connections as soon as its queues exist.
  const { BullMqJobRunner } = await import('./bullmq.ts');
  const runner = new BullMqJobRunner(deps);
  try {
    await runner.ping();
  } catch (err) {
    await runner.close().catch(() => undefined);
    throw err;
  }
  return runner;
}

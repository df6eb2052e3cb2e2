import type { RunMode } from '../types.ts';

/**
 * Queues sync work. Two adapters: BullMQ on Redis (workers/), and in-process when REDIS_URL is unset.
 * Both guarantee one sync per source at a time: asking again while one is queued or running
 * returns that run instead of starting another.
 */
export interface JobRunner {
  readonly kind: 'bullmq' | 'in-process';
  enqueueSync(sourceId: string, mode: RunMode | undefined): Promise<{ runId: string; deduplicated: boolean }>;
  /** Installs, replaces or (null) removes the source's repeating schedule. */
  setSchedule(sourceId: string, intervalSeconds: number | null): Promise<void>;
  /** Starts consuming jobs in this process (workers). The API-only process does not call it. */
  startWorkers(): Promise<void>;
  /** Stops taking new jobs, lets the current page finish, then resolves. */
  close(): Promise<void>;
  ping(): Promise<void>;
}

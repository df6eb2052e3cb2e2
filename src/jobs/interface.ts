import type { Services } from '../context.ts';
import type { RunMode } from '../types.ts';

/** Work that repeats on a fixed interval besides syncs (e.g. freshness evaluation). */
export type RepeatableHandler = (ctx: Services) => Promise<void>;

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
  /**
   * Runs `handler` every `everyMs` (the first run comes at once or after one interval), in one
   * worker at a time, never overlapping itself: a tick that finds the previous run going is skipped. Registering the same name again replaces the interval and
   * handler. Only processes that call startWorkers run handlers; every process that may run them must
   * register them (handlers are code, only the schedule is shared).
   */
  registerRepeatable(name: string, everyMs: number, handler: RepeatableHandler): Promise<void>;
  /** Starts consuming jobs in this process (workers). The API-only process does not call it. */
  startWorkers(): Promise<void>;
  /** Stops taking new jobs, lets the current page finish, then resolves. */
  close(): Promise<void>;
  ping(): Promise<void>;
}

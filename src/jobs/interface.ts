import type { RunMode, RunStats } from '../types.ts';
import type { SyncRequestOutcome } from './policy.ts';

/** One sync of one source as the queue carries it; `attempt` and `throttled` are the policy's counters. */
export interface SyncJob {
  sourceId: string;
  runId: string;
  /** What was asked for; undefined/null → incremental when a cursor exists, full otherwise. */
  mode: RunMode | null;
  /** Failed attempts so far (each waited out with backoff). */
  attempt: number;
  /** Upstream Retry-After waits so far; they are not failures, so they do not use attempts. */
  throttled: number;
}

/** What the sync-job policy decided; a queue adapter only translates it into queue operations. */
export type SyncOutcome =
  | { kind: 'done' }
  /** Shutdown: the page in flight finished; hand the job to the next worker, unchanged. */
  | { kind: 'stopped' }
  | { kind: 'retry'; delayMs: number; job: SyncJob }
  | { kind: 'failed'; error: string };

export interface SyncProgress {
  page: number;
  stats: RunStats;
}

/** Performs one sync job (src/jobs/policy.ts); the composition root builds it from the services. */
export type SyncWork = (job: SyncJob, opts: { signal: AbortSignal; onProgress?: (p: SyncProgress) => void }) => Promise<SyncOutcome>;

/** Work that repeats on a fixed interval besides syncs (e.g. freshness evaluation). */
export type RepeatableHandler = () => Promise<void>;

/**
 * A queue for sync work. Two adapters: BullMQ on Redis (bullmq.ts), and in-process when REDIS_URL
 * is unset (in-process.ts). Both guarantee one sync per source at a time (the run store enforces
 * one active run per source): asking again while one is queued or running returns that run.
 * Neither decides anything about retries or run status: that is the policy's SyncWork.
 */
export interface JobRunner {
  readonly kind: 'bullmq' | 'in-process';
  enqueueSync(sourceId: string, mode: RunMode | undefined): Promise<{ runId: string; deduplicated: boolean }>;
  /**
   * A change notification for the source: debounced and coalesced by the policy's SyncRequests
   * (at most one run queued or running plus one follow-up per source, whatever the storm).
   */
  requestSync(sourceId: string, notifiedAt: Date): Promise<SyncRequestOutcome>;
  /** Installs, replaces or (null) removes the source's repeating schedule. */
  setSchedule(sourceId: string, intervalSeconds: number | null): Promise<void>;
  /**
   * Runs `handler` every `everyMs`, in one worker at a time, never overlapping itself: a tick that
   * finds the previous run going is skipped. Registering the same name again replaces it. Only
   * processes that start workers run handlers; every such process must register them (handlers are
   * code, only the schedule is shared).
   */
  registerRepeatable(name: string, everyMs: number, handler: RepeatableHandler): Promise<void>;
  /** Starts consuming sync jobs with `work` in this process. The API-only process does not call it. */
  startWorkers(work: SyncWork): Promise<void>;
  /** Stops taking new jobs, lets the current page finish, then resolves. */
  close(): Promise<void>;
  ping(): Promise<void>;
}

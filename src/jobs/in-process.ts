import type pino from 'pino';
import type { Config } from '../config.ts';
import type { MetadataStore } from '../metadata/interface.ts';
import type { RunMode } from '../types.ts';
import type { JobRunner, RepeatableHandler, SyncJob, SyncWork } from './interface.ts';
import { SyncRequests } from './policy.ts';

export interface QueueDeps {
  config: Pick<Config, 'SYNC_CONCURRENCY' | 'REDIS_URL' | 'QUEUE_PREFIX' | 'JOB_LOCK_SECONDS'> & Partial<Pick<Config, 'NOTIFICATION_DEBOUNCE_MS'>>;
  log: pino.Logger;
  metadata: MetadataStore;
}

/**
 * The queue used when REDIS_URL is unset: the same guarantees as BullMQ (one sync per source,
 * schedules, delayed retries, hand-back on shutdown) inside this process. What a job's outcome
 * means is decided by the sync-job policy; this only keeps the queue.
 */
export class InProcessJobRunner implements JobRunner {
  readonly kind = 'in-process' as const;
  private queue: SyncJob[] = [];
  private running = new Map<string, Promise<void>>();
  private timers = new Map<string, NodeJS.Timeout>();
  private retryTimers = new Set<NodeJS.Timeout>();
  private work: SyncWork | undefined;
  private closing = false;
  private abort = new AbortController();
  private repeatables = new Map<string, { everyMs: number; handler: RepeatableHandler; timer?: NodeJS.Timeout; running?: Promise<void> }>();

  private readonly requests: SyncRequests;

  constructor(private readonly deps: QueueDeps) {
    this.requests = new SyncRequests(
      { metadata: deps.metadata, debounceMs: deps.config.NOTIFICATION_DEBOUNCE_MS ?? 2000 },
      async (run, delayMs) => this.later({ sourceId: run.sourceId, runId: run.id, mode: null, attempt: 0, throttled: 0 }, delayMs),
    );
  }

  requestSync(sourceId: string, notifiedAt: Date) {
    return this.requests.request(sourceId, notifiedAt);
  }

  /** Queues the job after `delayMs` (debounce window, retry backoff). */
  private later(job: SyncJob, delayMs: number) {
    if (this.closing) return;
    const t = setTimeout(() => {
      this.retryTimers.delete(t);
      this.queue.push(job);
      this.pump();
    }, delayMs);
    this.retryTimers.add(t);
  }

  async enqueueSync(sourceId: string, mode: RunMode | undefined) {
    const { metadata } = this.deps;
    const cursor = await metadata.sources.cursor(sourceId);
    const { run, created } = await metadata.runs.start(sourceId, mode ?? (cursor ? 'incremental' : 'full'));
    if (created) {
      this.queue.push({ sourceId, runId: run.id, mode: mode ?? null, attempt: 0, throttled: 0 });
      this.pump();
    }
    return { runId: run.id, deduplicated: !created };
  }

  async setSchedule(sourceId: string, intervalSeconds: number | null) {
    clearInterval(this.timers.get(sourceId));
    this.timers.delete(sourceId);
    if (!intervalSeconds) return;
    const timer = setInterval(() => {
      if (this.work && !this.closing) {
        this.enqueueSync(sourceId, undefined).catch((err) => this.deps.log.warn({ err, sourceId }, 'scheduled sync failed to enqueue'));
      }
    }, intervalSeconds * 1000);
    timer.unref();
    this.timers.set(sourceId, timer);
  }

  async registerRepeatable(name: string, everyMs: number, handler: RepeatableHandler) {
    if (!Number.isFinite(everyMs) || everyMs <= 0) throw new RangeError(`repeatable ${name}: everyMs must be positive`);
    clearInterval(this.repeatables.get(name)?.timer);
    this.repeatables.set(name, { everyMs, handler });
    if (this.work && !this.closing) this.startRepeatable(name);
  }

  private startRepeatable(name: string) {
    const entry = this.repeatables.get(name)!;
    entry.timer = setInterval(() => {
      // A run still in progress when the next tick comes is not overlapped; the tick is skipped.
      if (entry.running || this.closing) return;
      entry.running = entry.handler()
        .catch((err) => this.deps.log.warn({ err, name }, 'repeatable job failed'))
        .finally(() => { entry.running = undefined; });
    }, entry.everyMs);
    entry.timer.unref();
  }

  async startWorkers(work: SyncWork) {
    if (this.work || this.closing) return;
    this.work = work;
    for (const name of this.repeatables.keys()) this.startRepeatable(name);
    const { metadata } = this.deps;
    // Runs left queued or running by a previous process (crash, restart) are picked up again.
    for (const source of await metadata.sources.list()) {
      if (source.schedule && source.status === 'active' && source.enabled) await this.setSchedule(source.id, source.schedule.intervalSeconds);
      const active = await metadata.runs.active(source.id);
      if (active && !this.queue.some((j) => j.runId === active.id)) {
        await metadata.runs.update(active.id, { status: 'queued' });
        this.queue.push({ sourceId: source.id, runId: active.id, mode: active.mode, attempt: 0, throttled: 0 });
      } else if (!active) {
        // Requests left pending by a process that stopped before its run's end drained them.
        await this.requests.drain(source.id);
      }
    }
    this.pump();
  }

  private pump() {
    if (!this.work || this.closing) return;
    const limit = this.deps.config.SYNC_CONCURRENCY;
    for (let i = 0; i < this.queue.length && this.running.size < limit; ) {
      const job = this.queue[i]!;
      if (this.running.has(job.sourceId)) { i++; continue; }
      this.queue.splice(i, 1);
      const p = this.execute(job).finally(() => {
        this.running.delete(job.sourceId);
        this.pump();
      });
      this.running.set(job.sourceId, p);
    }
  }

  private async execute(job: SyncJob) {
    let outcome;
    this.requests.started(job.sourceId);
    try {
      outcome = await this.work!(job, { signal: this.abort.signal });
    } catch (err) {
      // The policy records every failure it can; this is a store that could not be reached at all.
      this.deps.log.error({ err, sourceId: job.sourceId, runId: job.runId }, 'sync job could not be run');
      return;
    }
    if (outcome.kind === 'retry') {
      this.later(outcome.job, outcome.delayMs);
      return;
    }
    // Notifications that came while it ran: exactly one follow-up.
    if (outcome.kind !== 'stopped' && !this.closing) {
      await this.requests.drain(job.sourceId).catch((err) => this.deps.log.warn({ err, sourceId: job.sourceId }, 'follow-up sync could not be queued'));
    }
  }

  /** Waits for the running syncs (if any) to finish their current page and stop. */
  async close() {
    this.closing = true;
    this.abort.abort();
    for (const t of this.timers.values()) clearInterval(t);
    for (const t of this.retryTimers) clearTimeout(t);
    for (const r of this.repeatables.values()) clearInterval(r.timer);
    await Promise.allSettled([...this.running.values(), ...[...this.repeatables.values()].map((r) => r.running)]);
  }

  /** Resolves once nothing is queued or running (tests, demo). */
  async idle() {
    while (this.queue.length || this.running.size || this.retryTimers.size) {
      await Promise.allSettled(this.running.values());
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async ping() {}
}

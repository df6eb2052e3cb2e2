import type { Services } from '../context.ts';
import { UpstreamError } from '../errors.ts';
import { runSync, SyncAborted } from '../indexer/sync.ts';
import type { RunMode } from '../types.ts';
import type { JobRunner, RepeatableHandler } from './interface.ts';
import { MAX_ATTEMPTS, retryDelayMs } from './retry.ts';

interface Pending {
  sourceId: string;
  runId: string;
  mode: RunMode | undefined;
  attempt: number;
  /** Waits asked for by the upstream (Retry-After); they are not failures, so they do not use attempts. */
  throttled?: number;
}

const MAX_THROTTLE_WAITS = 20;

/**
 * The job runner used when REDIS_URL is unset: same guarantees as the BullMQ one (one sync per
 * source, schedules, retries with backoff and Retry-After), inside this process.
 */
export class InProcessJobRunner implements JobRunner {
  readonly kind = 'in-process' as const;
  private queue: Pending[] = [];
  private running = new Map<string, Promise<void>>();
  private timers = new Map<string, NodeJS.Timeout>();
  private retryTimers = new Set<NodeJS.Timeout>();
  private started = false;
  private closing = false;
  private abort = new AbortController();
  private enqueueLock: Promise<unknown> = Promise.resolve();
  private repeatables = new Map<string, { everyMs: number; handler: RepeatableHandler; timer?: NodeJS.Timeout; running?: Promise<void> }>();

  constructor(private readonly ctx: () => Services) {}

  enqueueSync(sourceId: string, mode: RunMode | undefined) {
    // Serialised so two simultaneous requests cannot both see "no active run".
    const result = this.enqueueLock.then(async () => {
      const metadata = this.ctx().metadata;
      const active = await metadata.activeRun(sourceId);
      if (active) return { runId: active.id, deduplicated: true };
      const cursor = await metadata.getCursor(sourceId);
      const run = await metadata.createRun(sourceId, mode ?? (cursor ? 'incremental' : 'full'));
      this.queue.push({ sourceId, runId: run.id, mode, attempt: 0 });
      this.pump();
      return { runId: run.id, deduplicated: false };
    });
    this.enqueueLock = result.catch(() => undefined);
    return result;
  }

  async setSchedule(sourceId: string, intervalSeconds: number | null) {
    clearInterval(this.timers.get(sourceId));
    this.timers.delete(sourceId);
    if (!intervalSeconds) return;
    const timer = setInterval(() => {
      if (this.started && !this.closing) this.enqueueSync(sourceId, undefined).catch((err) => this.ctx().log.warn({ err, sourceId }, 'scheduled sync failed to enqueue'));
    }, intervalSeconds * 1000);
    timer.unref();
    this.timers.set(sourceId, timer);
  }

  async registerRepeatable(name: string, everyMs: number, handler: RepeatableHandler) {
    if (!Number.isFinite(everyMs) || everyMs <= 0) throw new RangeError(`repeatable ${name}: everyMs must be positive`);
    clearInterval(this.repeatables.get(name)?.timer);
    this.repeatables.set(name, { everyMs, handler });
    if (this.started && !this.closing) this.startRepeatable(name);
  }

  private startRepeatable(name: string) {
    const entry = this.repeatables.get(name)!;
    entry.timer = setInterval(() => {
      // A run still in progress when the next tick comes is not overlapped; the tick is skipped.
      if (entry.running || this.closing) return;
      entry.running = entry.handler(this.ctx())
        .catch((err) => this.ctx().log.warn({ err, name }, 'repeatable job failed'))
        .finally(() => { entry.running = undefined; });
    }, entry.everyMs);
    entry.timer.unref();
  }

  async startWorkers() {
    if (this.started) return;
    this.started = true;
    for (const name of this.repeatables.keys()) this.startRepeatable(name);
    const ctx = this.ctx();
    // Runs left queued or running by a previous process (crash, restart) are picked up again.
    for (const source of await ctx.metadata.listSources()) {
      if (source.schedule && source.status === 'active') await this.setSchedule(source.id, source.schedule.intervalSeconds);
      const active = await ctx.metadata.activeRun(source.id);
      if (active && !this.queue.some((p) => p.runId === active.id)) {
        await ctx.metadata.updateRun(active.id, { status: 'queued' });
        this.queue.push({ sourceId: source.id, runId: active.id, mode: active.mode, attempt: 0 });
      }
    }
    this.pump();
  }

  private pump() {
    if (!this.started || this.closing) return;
    const limit = this.ctx().config.SYNC_CONCURRENCY;
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

  private async execute(job: Pending) {
    const ctx = this.ctx();
    try {
      await runSync({ ctx, input: { sourceId: job.sourceId, runId: job.runId, mode: job.mode, signal: this.abort.signal } });
    } catch (err) {
      if (err instanceof SyncAborted || this.closing) {
        await ctx.metadata.updateRun(job.runId, { status: 'queued', error: null, finishedAt: null }).catch(() => undefined);
        return;
      }
      const throttled = err instanceof UpstreamError && err.retryAfterSeconds !== undefined && (job.throttled ?? 0) < MAX_THROTTLE_WAITS;
      const delay = throttled || job.attempt + 1 < MAX_ATTEMPTS ? retryDelayMs(err, job.attempt) : null;
      if (delay === null) return; // runSync already marked the run failed with the error
      await ctx.metadata.updateRun(job.runId, { status: 'queued', finishedAt: null });
      ctx.log.info({ sourceId: job.sourceId, runId: job.runId, delayMs: delay }, 'sync will be retried');
      const t = setTimeout(() => {
        this.retryTimers.delete(t);
        this.queue.push(throttled ? { ...job, throttled: (job.throttled ?? 0) + 1 } : { ...job, attempt: job.attempt + 1 });
        this.pump();
      }, delay);
      this.retryTimers.add(t);
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

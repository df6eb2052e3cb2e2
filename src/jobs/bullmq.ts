import { randomUUID } from 'node:crypto';
import { DelayedError, Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { errorMessage } from '../errors.ts';
import type { Run, RunMode } from '../types.ts';
import type { QueueDeps } from './in-process.ts';
import type { JobRunner, RepeatableHandler, SyncJob, SyncWork } from './interface.ts';
import { MAX_ATTEMPTS, SyncRequests, backoffMs } from './policy.ts';

/** Job data: the policy's SyncJob (older jobs may lack the counters). */
type SyncJobData = Omit<SyncJob, 'attempt' | 'throttled'> & Partial<Pick<SyncJob, 'attempt' | 'throttled'>>;

type ControlJobData = { kind: 'schedule'; sourceId: string } | { kind: 'repeat'; name: string };

export interface BullMqJobRunnerOptions {
  /** Overrides QUEUE_PREFIX (tests use a random one). */
  prefix?: string;
  /** Overrides JOB_LOCK_SECONDS, in milliseconds. */
  lockDurationMs?: number;
}

const SYNC_QUEUE = 'sync';
const CONTROL_QUEUE = 'control';
/**
 * A sync resumes from its last committed page, so a job picked up again after its worker died is
 * safe; the cap only stops a job that takes down every worker that runs it.
 */
const MAX_STALLED = 10;
const ENQUEUE_LOCK_MS = 15_000;
const PING_TIMEOUT_MS = 5_000;

/** BullMQ forbids ':' in custom job ids; the id is deterministic so a source has one sync job at most. */
export const syncJobId = (sourceId: string) => `sync-${sourceId}`;
const scheduleId = (sourceId: string) => `schedule-${sourceId}`;
const repeatId = (name: string) => `repeat-${name}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sync jobs on Redis (BullMQ). One job per source at a time: the job id is derived from the source,
 * the run store allows one active run per source, and making sure the run has its job is
 * serialised per source across processes by a short Redis lock. Schedules and repeatable
 * maintenance jobs live on a separate control queue so they are never stuck behind long syncs.
 * What a job's outcome means (retry, wait, give up) is the sync-job policy's decision; this
 * adapter turns it into BullMQ's moves (delayed, waiting, UnrecoverableError).
 */
export class BullMqJobRunner implements JobRunner {
  readonly kind = 'bullmq' as const;
  readonly prefix: string;
  private readonly lockDurationMs: number;
  private readonly conn: Redis;
  private workerConn: Redis | undefined;
  readonly syncQueue: Queue<SyncJobData>;
  readonly controlQueue: Queue<ControlJobData>;
  private syncWorker: Worker<SyncJobData> | undefined;
  private controlWorker: Worker<ControlJobData> | undefined;
  private readonly repeatables = new Map<string, { everyMs: number; handler: RepeatableHandler }>();
  private readonly abort = new AbortController();
  private closing: Promise<void> | undefined;
  private work: SyncWork | undefined;

  private readonly requests: SyncRequests;

  constructor(private readonly deps: QueueDeps, opts: BullMqJobRunnerOptions = {}) {
    const config = deps.config;
    this.requests = new SyncRequests(
      { metadata: deps.metadata, debounceMs: config.NOTIFICATION_DEBOUNCE_MS ?? 2000, withLock: (id, fn) => this.withSourceLock(id, fn) },
      (run, delayMs) => this.ensureJob(run, undefined, delayMs),
    );
    if (!config.REDIS_URL) throw new Error('REDIS_URL is required for the BullMQ job runner');
    this.prefix = opts.prefix ?? config.QUEUE_PREFIX;
    this.lockDurationMs = opts.lockDurationMs ?? config.JOB_LOCK_SECONDS * 1000;
    // Producers fail a command after a few reconnection attempts instead of hanging an HTTP request.
    this.conn = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 3 });
    this.conn.on('error', (err) => this.logRedisError(err));
    this.syncQueue = new Queue<SyncJobData>(SYNC_QUEUE, { connection: this.conn, prefix: this.prefix });
    this.controlQueue = new Queue<ControlJobData>(CONTROL_QUEUE, { connection: this.conn, prefix: this.prefix });
    this.syncQueue.on('error', (err) => this.logRedisError(err));
    this.controlQueue.on('error', (err) => this.logRedisError(err));
  }

  private lastRedisError = 0;
  private logRedisError(err: unknown) {
    // ioredis repeats the same error on every reconnection attempt; one line every 10 s is enough.
    if (Date.now() - this.lastRedisError < 10_000) return;
    this.lastRedisError = Date.now();
    this.deps.log.warn({ err: errorMessage(err) }, 'Redis connection problem');
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis at ${describe(this.deps.config.REDIS_URL!)} within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.conn.ping(), timeout]);
    } catch (err) {
      const cause = (err as Error).message.includes('max retries') ? 'connection refused or dropped' : (err as Error).message;
      throw new Error(`cannot reach Redis at ${describe(this.deps.config.REDIS_URL!)}: ${cause}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- Enqueueing --------------------------------------------------------------------------------

  async enqueueSync(sourceId: string, mode: RunMode | undefined) {
    return this.withSourceLock(sourceId, async () => {
      const { metadata } = this.deps;
      const cursor = await metadata.sources.cursor(sourceId);
      const { run, created } = await metadata.runs.start(sourceId, mode ?? (cursor ? 'incremental' : 'full'));
      // For an existing run this also heals a job that went missing (Redis flushed, crash between the two writes).
      await this.ensureJob(run, created ? mode : undefined);
      return { runId: run.id, deduplicated: !created };
    });
  }

  requestSync(sourceId: string, notifiedAt: Date) {
    return this.requests.request(sourceId, notifiedAt);
  }

  /** After a sync job ended in this worker: notifications that came while it ran get one follow-up. */
  private drain(sourceId: string) {
    if (this.closing) return;
    void this.requests.drain(sourceId)
      .catch((err) => this.deps.log.warn({ err: errorMessage(err), sourceId }, 'follow-up sync could not be queued'));
  }

  /**
   * Makes sure the source's job exists and carries this run. A job left by an earlier run that is
   * over (completed, failed, or waiting for a run that already finished) is replaced; one still
   * being finished by a worker is waited for.
   */
  private async ensureJob(run: Pick<Run, 'id' | 'sourceId' | 'mode'>, mode?: RunMode, delayMs = 0): Promise<void> {
    const jobId = syncJobId(run.sourceId);
    const deadline = Date.now() + this.lockDurationMs + 5_000;
    for (;;) {
      const job = await this.syncQueue.getJob(jobId);
      if (job) {
        const state = await job.getState();
        const ours = job.data.runId === run.id;
        if (ours && state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
        if (state === 'active') {
          // The previous run's job is between "run finished" and "job completed": moments away.
          if (Date.now() > deadline) throw new Error(`the previous sync job of source ${run.sourceId} is still active`);
          await sleep(50);
          continue;
        }
        await job.remove().catch(() => undefined);
      }
      await this.syncQueue.add('sync', { sourceId: run.sourceId, runId: run.id, mode: mode ?? run.mode ?? null, attempt: 0, throttled: 0 }, {
        jobId,
        // The debounce window of a run that answers change notifications.
        ...(delayMs > 0 ? { delay: delayMs } : {}),
        // Only for failures of the worker itself (store unreachable): the policy decides the rest.
        attempts: MAX_ATTEMPTS,
        backoff: { type: 'clearance' },
        removeOnComplete: true,
        // Kept for a while so the 'failed' listener and operators can see why; ensureJob replaces them.
        removeOnFail: { count: 500 },
      });
      const added = await this.syncQueue.getJob(jobId);
      if (added?.data.runId === run.id) return;
      // Lost a race with a job that appeared in between (only possible without the lock); look again.
    }
  }

  /** Serialises "is there an active run? else create one" per source across every process on this Redis. */
  private async withSourceLock<T>(sourceId: string, fn: () => Promise<T>): Promise<T> {
    const key = `${this.prefix}:lock:enqueue:${sourceId}`;
    const deadline = Date.now() + ENQUEUE_LOCK_MS * 2;
    let lock;
    while (!(lock = await this.tryLock(key, ENQUEUE_LOCK_MS))) {
      if (Date.now() > deadline) throw new Error(`could not lock source ${sourceId} for enqueueing`);
      await sleep(25);
    }
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /** A Redis lock that only its holder can release (it expires by itself if the holder dies). */
  private async tryLock(key: string, ttlMs: number) {
    const token = randomUUID();
    if ((await this.conn.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return null;
    const ifOurs = (cmd: string) => this.conn.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return ${cmd} else return 0 end`, 1, key, token, ttlMs,
    ).then(() => undefined, () => undefined);
    return {
      release: () => ifOurs("redis.call('del', KEYS[1])"),
      renew: () => ifOurs("redis.call('pexpire', KEYS[1], ARGV[2])"),
    };
  }

  // ---- Schedules and repeatable jobs -------------------------------------------------------------

  async setSchedule(sourceId: string, intervalSeconds: number | null) {
    if (!intervalSeconds) {
      await this.controlQueue.removeJobScheduler(scheduleId(sourceId));
      return;
    }
    await this.upsertScheduler(scheduleId(sourceId), intervalSeconds * 1000, { kind: 'schedule', sourceId });
  }

  async registerRepeatable(name: string, everyMs: number, handler: RepeatableHandler) {
    if (!Number.isFinite(everyMs) || everyMs <= 0) throw new RangeError(`repeatable ${name}: everyMs must be positive`);
    this.repeatables.set(name, { everyMs, handler });
    await this.upsertScheduler(repeatId(name), everyMs, { kind: 'repeat', name });
  }

  /** Upserts only when missing or changed: re-upserting restarts the interval (and fires at once). */
  private async upsertScheduler(id: string, everyMs: number, data: ControlJobData) {
    const existing = await this.controlQueue.getJobScheduler(id);
    if (existing && Number(existing.every) === everyMs) return;
    await this.controlQueue.upsertJobScheduler(id, { every: everyMs }, {
      name: data.kind,
      data,
      opts: { removeOnComplete: true, removeOnFail: { count: 100 } },
    });
  }

  // ---- Workers -----------------------------------------------------------------------------------

  async startWorkers(work: SyncWork) {
    if (this.syncWorker || this.closing) return;
    this.work = work;
    const { config } = this.deps;
    await this.ping();
    // Workers block on Redis; they must wait for it to come back rather than fail the command.
    this.workerConn = new Redis(config.REDIS_URL!, { maxRetriesPerRequest: null });
    this.workerConn.on('error', (err) => this.logRedisError(err));
    this.syncWorker = new Worker<SyncJobData>(SYNC_QUEUE, (job, token) => this.processSync(job, token), {
      connection: this.workerConn,
      prefix: this.prefix,
      concurrency: config.SYNC_CONCURRENCY,
      lockDuration: this.lockDurationMs,
      stalledInterval: Math.max(1_000, Math.floor(this.lockDurationMs / 2)),
      maxStalledCount: MAX_STALLED,
      settings: { backoffStrategy: (attemptsMade) => backoffMs(attemptsMade - 1) },
    });
    this.syncWorker.on('error', (err) => this.logRedisError(err));
    this.syncWorker.on('failed', (job, err) => void this.onSyncFailed(job, err));
    this.syncWorker.on('completed', (job) => this.drain(job.data.sourceId));
    this.controlWorker = new Worker<ControlJobData>(CONTROL_QUEUE, (job) => this.processControl(job), {
      connection: this.workerConn,
      prefix: this.prefix,
      concurrency: 2,
    });
    this.controlWorker.on('error', (err) => this.logRedisError(err));
    await Promise.all([this.syncWorker.waitUntilReady(), this.controlWorker.waitUntilReady()]);
    await this.reconcile();
  }

  /**
   * Brings Redis in line with the metadata store after a restart: every source's schedule is
   * installed (or removed), and every run left queued or running gets a job. A job still held by a
   * worker that died is freed by BullMQ's stalled check once its lock expires, and resumes.
   */
  private async reconcile() {
    const { metadata } = this.deps;
    const sources = await metadata.sources.list();
    const known = new Set(sources.map((s) => scheduleId(s.id)));
    for (const s of await this.controlQueue.getJobSchedulers(0, -1)) {
      const id = s.key ?? s.id;
      if (id?.startsWith('schedule-') && !known.has(id)) await this.controlQueue.removeJobScheduler(id);
    }
    for (const source of sources) {
      await this.setSchedule(source.id, source.status === 'active' && source.enabled ? source.schedule?.intervalSeconds ?? null : null);
      await this.withSourceLock(source.id, async () => {
        const active = await metadata.runs.active(source.id);
        if (active) await this.ensureJob(active);
      });
      // Requests left pending by a worker that stopped before its run's end drained them.
      if (!(await metadata.runs.active(source.id))) await this.requests.drain(source.id);
    }
  }

  private async processSync(job: Job<SyncJobData>, token: string | undefined): Promise<unknown> {
    const data: SyncJob = { ...job.data, attempt: job.data.attempt ?? 0, throttled: job.data.throttled ?? 0 };
    const outcome = await this.work!(data, {
      signal: this.abort.signal,
      onProgress: (p) => void job.updateProgress({ page: p.page, ...p.stats }).catch(() => undefined),
    });
    switch (outcome.kind) {
      case 'done':
        return { done: true };
      case 'stopped':
        // Shutdown: the page in flight finished; the job goes back to wait for the next worker.
        await job.moveToWait(token);
        throw new WaitingError();
      case 'retry':
        await job.updateData(outcome.job);
        await job.moveToDelayed(Date.now() + outcome.delayMs, token);
        throw new DelayedError();
      case 'failed':
        throw new UnrecoverableError(outcome.error);
    }
  }

  /** A job that ended failed without runSync recording it (stalled too often, lost lock) fails its run. */
  private async onSyncFailed(job: Job<SyncJobData> | undefined, err: Error) {
    if (!job) return;
    try {
      if ((await job.getState()) !== 'failed') return;
      const { metadata } = this.deps;
      const run = await metadata.runs.get(job.data.runId);
      if (run && (run.status === 'queued' || run.status === 'running')) {
        await metadata.runs.update(run.id, { status: 'failed', finishedAt: new Date(), error: errorMessage(err) });
      }
      this.drain(job.data.sourceId);
    } catch (e) {
      this.deps.log.warn({ err: errorMessage(e), jobId: job.id }, 'could not record a failed sync job');
    }
  }

  private async processControl(job: Job<ControlJobData>): Promise<void> {
    const data = job.data;
    if (data.kind === 'schedule') {
      if (this.closing) return;
      const source = await this.deps.metadata.sources.get(data.sourceId);
      // A schedule outliving its source (deleted or paused from a process that lost Redis) ends here.
      if (!source || source.status !== 'active' || !source.enabled) {
        await this.controlQueue.removeJobScheduler(scheduleId(data.sourceId));
        return;
      }
      await this.enqueueSync(data.sourceId, undefined);
      return;
    }
    const entry = this.repeatables.get(data.name);
    if (!entry) {
      this.deps.log.warn({ name: data.name }, 'no handler registered in this worker for a repeatable job');
      return;
    }
    // Ticks keep coming while a slow run is still going (here or in another worker): skip them.
    const ttl = Math.max(30_000, entry.everyMs * 2);
    const lock = await this.tryLock(`${this.prefix}:lock:repeat:${data.name}`, ttl);
    if (!lock) return;
    const renew = setInterval(() => void lock.renew(), ttl / 3);
    try {
      await entry.handler();
    } finally {
      clearInterval(renew);
      await lock.release();
    }
  }

  // ---- Shutdown ----------------------------------------------------------------------------------

  /** Running syncs stop after their current page and go back to the queue; then connections close. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      await Promise.allSettled([this.syncWorker?.close(), this.controlWorker?.close()]);
      await Promise.allSettled([this.syncQueue.close(), this.controlQueue.close()]);
      await Promise.allSettled([quit(this.workerConn), quit(this.conn)]);
    })();
    return this.closing;
  }
}

async function quit(conn: Redis | undefined) {
  if (!conn || conn.status === 'end') return;
  await conn.quit().catch(() => conn.disconnect());
}

function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the configured URL';
  }
}

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/errors.ts';
import { documentIdFor } from '../../src/indexer/hash.ts';
import type { QueueDeps } from '../../src/jobs/in-process.ts';
import type { JobRunner } from '../../src/jobs/interface.ts';
import { createSyncWork } from '../../src/jobs/policy.ts';
import { FakeEmbedder } from '../fakes/embedder.ts';
import type { RunStatus } from '../../src/types.ts';
import { createHarness, type Harness } from './harness.ts';
import { createScriptedSource, GatedEmbedder, pagesOf, waitFor, type ScriptedDoc } from './scripted-connector.ts';

export interface RunnerFactory {
  /** A runner on these dependencies; called again after close() to play a restarted process. */
  create(deps: QueueDeps): Promise<JobRunner> | JobRunner;
  /** Removes whatever the runners left outside the process (queues). */
  cleanup?(): Promise<void>;
}

/**
 * Behaviour both job runners promise (src/jobs/interface.ts) with the one sync-job policy
 * (src/jobs/policy.ts): one run per source at a time, schedules, Retry-After and backoff retries,
 * no retry of hopeless errors, graceful shutdown that hands the run to the next worker, and
 * repeatable jobs.
 */
/** The notification debounce window the suite's runners use (short, so the tests stay quick). */
const DEBOUNCE_MS = 400;

export function jobRunnerSuite(name: string, factory: RunnerFactory) {
  describe(name, () => {
    let h: Harness;
    let embedder: GatedEmbedder;
    let runner: JobRunner;

    async function start() {
      runner = await factory.create({ config: { ...h.config, NOTIFICATION_DEBOUNCE_MS: DEBOUNCE_MS }, log: h.log, metadata: h.metadata });
      h.jobs = runner as Harness['jobs'];
      await runner.startWorkers(createSyncWork(h));
    }

    // One store for the file (PGlite takes seconds to start); each test has its own sources and runner.
    beforeAll(async () => {
      embedder = new GatedEmbedder(new FakeEmbedder({ dimension: 32, maxTokens: 128 }));
      h = await createHarness({ embedder });
      await h.jobs.close();
    });
    afterAll(async () => {
      await h?.cleanup();
    });
    beforeEach(start);
    afterEach(async () => {
      await runner.close();
      await factory.cleanup?.();
    });

    const runStatus = (runId: string, ...statuses: RunStatus[]) =>
      waitFor(async () => {
        const run = await h.metadata.runs.get(runId);
        return run && statuses.includes(run.status) ? run : null;
      }, `run ${runId} to be ${statuses.join('/')}`);

    async function expectIndexed(sourceId: string, docs: ScriptedDoc[]) {
      let total = 0;
      for (const d of docs) {
        const rec = await h.metadata.documents.byExternalId(sourceId, d.id);
        expect(rec?.status, d.id).toBe('indexed');
        expect(rec!.chunkCount).toBeGreaterThan(0);
        expect(await h.vectors.count({ documentId: documentIdFor(sourceId, d.id) })).toBe(rec!.chunkCount);
        total += rec!.chunkCount;
      }
      expect(await h.metadata.documents.count(sourceId)).toBe(docs.length);
      expect(await h.vectors.count({ sourceId })).toBe(total);
    }

    it('runs one sync per source: asking again while it is queued or running returns the same run', async () => {
      const pages = pagesOf(3, 4);
      const { source, script } = await createScriptedSource(h.metadata, 'dedup', { pages });
      const held = embedder.gate((t) => t.some((x) => x.includes('pg1')));
      const [a, b] = await Promise.all([runner.enqueueSync(source.id, undefined), runner.enqueueSync(source.id, undefined)]);
      expect(a.runId).toBe(b.runId);
      expect([a.deduplicated, b.deduplicated].sort()).toEqual([false, true]);
      await held.hit;
      expect((await h.metadata.runs.get(a.runId))?.status).toBe('running');
      const again = await Promise.all([runner.enqueueSync(source.id, 'full'), runner.enqueueSync(source.id, undefined)]);
      expect(again).toEqual([{ runId: a.runId, deduplicated: true }, { runId: a.runId, deduplicated: true }]);
      held.release();
      const run = await runStatus(a.runId, 'succeeded', 'failed');
      expect(run.status).toBe('succeeded');
      expect(run.stats).toMatchObject({ seen: 12, added: 12, failed: 0 });
      expect(script.calls).toHaveLength(1);
      expect(await h.metadata.runs.list(source.id)).toHaveLength(1);
      await expectIndexed(source.id, pages.flat());

      // Once it is over, the next request starts a new run, which finds nothing to embed.
      const next = await runner.enqueueSync(source.id, undefined);
      expect(next.deduplicated).toBe(false);
      expect(next.runId).not.toBe(a.runId);
      const second = await runStatus(next.runId, 'succeeded', 'failed');
      expect(second.stats).toMatchObject({ unchanged: 12, chunksEmbedded: 0 });
    });

    it('coalesces a storm of 1,000 notifications for an idle source into one run that starts after the debounce window', async () => {
      const { source, script } = await createScriptedSource(h.metadata, 'storm-idle', { pages: pagesOf(1, 2) });
      const t0 = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 1000 }, (_, i) => runner.requestSync(source.id, new Date(t0 + i))));
      // Concurrent arrivals share one store round trip, and so its outcome.
      expect(outcomes).toContain('queued');
      expect(outcomes.every((o) => o === 'queued' || o === 'coalesced')).toBe(true);
      expect(await runner.requestSync(source.id, new Date())).toBe('coalesced');
      const [run, ...others] = await h.metadata.runs.list(source.id);
      expect(others).toHaveLength(0);
      expect(run?.notifiedAt?.getTime()).toBe(t0);
      const done = await runStatus(run!.id, 'succeeded', 'failed');
      expect(done.status).toBe('succeeded');
      expect(done.startedAt!.getTime() - run!.createdAt.getTime()).toBeGreaterThanOrEqual(DEBOUNCE_MS - 50);
      // Nothing else is queued afterwards: the storm cost one sync.
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS * 2));
      expect(await h.metadata.runs.list(source.id)).toHaveLength(1);
      expect(script.calls).toHaveLength(1);
    });

    it('a storm during a running sync schedules exactly one follow-up run, which covers the earliest notification', async () => {
      const { source } = await createScriptedSource(h.metadata, 'storm-running', { pages: pagesOf(2, 2, 'stormdoc') });
      const held = embedder.gate((t) => t.some((x) => x.includes('stormdoc')));
      const first = await runner.enqueueSync(source.id, undefined);
      await held.hit;
      const during = new Date();
      const outcomes = await Promise.all(Array.from({ length: 1000 }, (_, i) => runner.requestSync(source.id, new Date(during.getTime() + i))));
      expect(new Set(outcomes)).toEqual(new Set(['follow-up']));
      held.release();
      await runStatus(first.runId, 'succeeded');
      const followUp = await waitFor(async () => (await h.metadata.runs.list(source.id)).find((r) => r.id !== first.runId), 'the follow-up run');
      expect(followUp.notifiedAt?.getTime()).toBe(during.getTime());
      expect((await runStatus(followUp.id, 'succeeded', 'failed')).status).toBe('succeeded');
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS * 2));
      expect(await h.metadata.runs.list(source.id)).toHaveLength(2);
      expect(await h.metadata.runs.active(source.id)).toBeNull();
    });

    it('a notification for a paused source starts nothing', async () => {
      const { source } = await createScriptedSource(h.metadata, 'paused-notify', { pages: pagesOf(1, 1) });
      await h.metadata.sources.update(source.id, { status: 'paused' });
      expect(await runner.requestSync(source.id, new Date())).toBe('ignored');
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS * 2));
      expect(await h.metadata.runs.list(source.id)).toHaveLength(0);
    });

    it('runs scheduled syncs repeatedly until the schedule is removed', async () => {
      const { source } = await createScriptedSource(h.metadata, 'scheduled', { pages: pagesOf(1, 2) });
      await runner.setSchedule(source.id, 1);
      const finished = async () => (await h.metadata.runs.list(source.id)).filter((r) => r.status === 'succeeded');
      await waitFor(async () => (await finished()).length >= 3, 'three scheduled runs', 15_000);
      await runner.setSchedule(source.id, null);
      // A tick already taken may still finish; after that, nothing new starts.
      await new Promise((r) => setTimeout(r, 1_200));
      await waitFor(async () => !(await h.metadata.runs.active(source.id)), 'the last scheduled run to finish');
      const settled = (await h.metadata.runs.list(source.id)).length;
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await h.metadata.runs.list(source.id)).toHaveLength(settled);
    });

    it('honours Retry-After: the retry comes no sooner than upstream asked, then succeeds', async () => {
      const pages = pagesOf(2, 3);
      const { source, script } = await createScriptedSource(h.metadata, 'throttled', {
        pages,
        failures: [new UpstreamError('429 Too Many Requests', { retryable: true, retryAfterSeconds: 1, status: 429 })],
      });
      const { runId } = await runner.enqueueSync(source.id, undefined);
      const run = await runStatus(runId, 'succeeded', 'failed');
      expect(run.status).toBe('succeeded');
      expect(run.error).toBeNull();
      expect(script.calls).toHaveLength(2);
      expect(script.calls[1]! - script.calls[0]!).toBeGreaterThanOrEqual(1_000);
      expect(await h.metadata.runs.list(source.id)).toHaveLength(1);
      await expectIndexed(source.id, pages.flat());
    });

    it('retries a transient failure with backoff', async () => {
      const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      const { source, script } = await createScriptedSource(h.metadata, 'flaky', { pages: pagesOf(1, 2), failures: [reset] });
      const { runId } = await runner.enqueueSync(source.id, undefined);
      const run = await runStatus(runId, 'succeeded', 'failed');
      expect(run.status).toBe('succeeded');
      expect(script.calls).toHaveLength(2);
      // First backoff step: between half and all of 2 s (full jitter on the upper half).
      expect(script.calls[1]! - script.calls[0]!).toBeGreaterThanOrEqual(1_000);
    });

    it('does not retry an error that retrying cannot fix, and stores its message', async () => {
      const { source, script } = await createScriptedSource(h.metadata, 'forbidden', {
        pages: pagesOf(1, 2),
        failures: [new UpstreamError('403 Forbidden: the app lost access to the site', { retryable: false, status: 403 })],
      });
      const { runId } = await runner.enqueueSync(source.id, undefined);
      const run = await runStatus(runId, 'failed', 'succeeded');
      expect(run.status).toBe('failed');
      expect(run.error).toContain('403 Forbidden: the app lost access to the site');
      expect(run.finishedAt).toBeInstanceOf(Date);
      // Longer than the first backoff step: nothing tries again.
      await new Promise((r) => setTimeout(r, 2_500));
      expect(script.calls).toHaveLength(1);
      expect((await h.metadata.runs.get(runId))?.status).toBe('failed');
      expect(await h.metadata.runs.list(source.id)).toHaveLength(1);
    });

    it('on close, lets the current page finish, then a restarted runner resumes the run to completion', async () => {
      const pages = pagesOf(4, 5);
      const { source } = await createScriptedSource(h.metadata, 'interrupted', { pages });
      const held = embedder.gate((t) => t.some((x) => x.includes('pg1')));
      const { runId } = await runner.enqueueSync(source.id, undefined);
      await held.hit;
      // close() is asked for while page 1 is being embedded; it must wait for that page.
      const closed = runner.close();
      await new Promise((r) => setTimeout(r, 100));
      held.release();
      await closed;

      const stopped = await h.metadata.runs.get(runId);
      expect(stopped?.status).toBe('queued');
      expect(stopped?.error).toBeNull();
      for (const d of pages[1]!) {
        const rec = await h.metadata.documents.byExternalId(source.id, d.id);
        expect(rec?.status, `${d.id} of the page in flight`).toBe('indexed');
        expect(await h.vectors.count({ documentId: rec!.id })).toBe(rec!.chunkCount);
      }
      for (const d of pages[3]!) expect(await h.metadata.documents.byExternalId(source.id, d.id)).toBeNull();

      await start();
      const run = await runStatus(runId, 'succeeded', 'failed');
      expect(run.status).toBe('succeeded');
      expect(await h.metadata.runs.list(source.id)).toHaveLength(1);
      await expectIndexed(source.id, pages.flat());
    });

    it('runs repeatable jobs on their interval without overlapping, until closed', async () => {
      const calls: number[] = [];
      let inFlight = 0;
      let overlapped = false;
      await runner.registerRepeatable('tick', 400, async () => {
        if (inFlight++ > 0) overlapped = true;
        calls.push(Date.now());
        await new Promise((r) => setTimeout(r, 600));
        inFlight--;
      });
      await waitFor(async () => calls.length >= 3, 'three repeatable runs', 10_000);
      expect(overlapped).toBe(false);
      await runner.close();
      const n = calls.length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(calls).toHaveLength(n);
    });
  });
}


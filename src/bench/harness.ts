import path from 'node:path';
import { loadConfig } from '../config.ts';
import type { Services } from '../context.ts';
import type { Embedder } from '../embedder/interface.ts';
import { createSyncWork } from '../jobs/policy.ts';
import { createServices } from '../services.ts';
import type { FreshnessPolicy, RunStats, Source } from '../types.ts';
import { benchModelEnv } from './corpus.ts';

/** Services for a benchmark, with embedded stores in `<tmp>/data` unless `overrides` (or the environment) say otherwise. */
export function benchServices(tmp: string, overrides: Record<string, string> = {}, opts: { embedder?: Embedder } = {}): Promise<Services> {
  return createServices(loadConfig({ ...process.env, ...benchModelEnv(), CLEARANCE_DATA_DIR: path.join(tmp, 'data'), LOG_LEVEL: 'warn', FILESYSTEM_ROOTS: tmp, ...overrides }), opts);
}

export function addFolderSource(s: Services, name: string, folder: string, freshness: FreshnessPolicy | null = null): Promise<Source> {
  return s.metadata.sources.create({ name, type: 'filesystem', config: { path: folder }, credentialsEncrypted: null, schedule: null, freshness });
}

/** One sync run as a worker runs it (full when there is no cursor yet), timed; `onProgress` gets the run's stats every few seconds. */
export async function timedSync(s: Services, sourceId: string, onProgress?: (stats: RunStats, seconds: number) => void): Promise<{ stats: RunStats; seconds: number }> {
  const { run } = await s.metadata.runs.start(sourceId, (await s.metadata.sources.cursor(sourceId)) ? 'incremental' : 'full');
  const t0 = performance.now();
  const timer = onProgress && setInterval(() => {
    void s.metadata.runs.get(run.id).then((r) => r && onProgress(r.stats, (performance.now() - t0) / 1000), () => undefined);
  }, 5_000);
  const outcome = await createSyncWork(s)({ sourceId, runId: run.id, mode: null, attempt: 0, throttled: 0 }, { signal: new AbortController().signal })
    .finally(() => clearInterval(timer));
  const seconds = (performance.now() - t0) / 1000;
  const done = await s.metadata.runs.get(run.id);
  if (outcome.kind !== 'done' || done?.status !== 'succeeded') throw new Error(`benchmark sync did not succeed: ${done?.error ?? outcome.kind}`);
  return { stats: done.stats, seconds };
}

import path from 'node:path';
import { loadConfig } from '../config.ts';
import type { Services } from '../context.ts';
import { runSync } from '../indexer/sync.ts';
import { createServices } from '../services.ts';
import type { FreshnessPolicy, RunStats, Source } from '../types.ts';
import { benchModelEnv } from './corpus.ts';

/** Services for a benchmark, with embedded stores in `<tmp>/data` unless `overrides` (or the environment) say otherwise. */
export function benchServices(tmp: string, overrides: Record<string, string> = {}): Promise<Services> {
  return createServices(loadConfig({ ...process.env, ...benchModelEnv(), CLEARANCE_DATA_DIR: path.join(tmp, 'data'), LOG_LEVEL: 'warn', ...overrides }));
}

export function addFolderSource(s: Services, name: string, folder: string, freshness: FreshnessPolicy | null = null): Promise<Source> {
  return s.metadata.createSource({ name, type: 'filesystem', config: { path: folder }, credentialsEncrypted: null, schedule: null, freshness });
}

/** One sync run as the job runner would start it (full when there is no cursor yet), timed. */
export async function timedSync(s: Services, sourceId: string): Promise<{ stats: RunStats; seconds: number }> {
  const run = await s.metadata.createRun(sourceId, (await s.metadata.getCursor(sourceId)) ? 'incremental' : 'full');
  const t0 = performance.now();
  const stats = await runSync({ ctx: s, input: { sourceId, runId: run.id } });
  return { stats, seconds: (performance.now() - t0) / 1000 };
}

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Services } from '../src/context.ts';
import { errorMessage } from '../src/errors.ts';

/**
 * Worker liveness for container healthchecks. A worker serves no HTTP, so it proves it is alive by
 * rewriting a small file every few seconds after pinging its queue and metadata store;
 * `clearance worker --health` (docker-compose.yml's worker healthcheck) reads that file. Each
 * container has its own /tmp, so each worker replica is judged on its own heartbeat.
 */
export const HEARTBEAT_FILE = path.join(os.tmpdir(), 'clearance-worker.heartbeat');
const INTERVAL_MS = 10_000;
/** Three missed beats: a worker blocked this long (or whose stores stopped answering) is unhealthy. */
export const MAX_AGE_MS = 3 * INTERVAL_MS + 5_000;

interface Beat { at: string; pid: number; ok: boolean; error?: string }

export function startHeartbeat(services: Pick<Services, 'jobs' | 'metadata'>, file = HEARTBEAT_FILE, intervalMs = INTERVAL_MS): () => void {
  let stopped = false;
  const beat = async () => {
    let error: string | undefined;
    try {
      await Promise.all([services.jobs.ping(), services.metadata.ping()]);
    } catch (err) {
      error = errorMessage(err);
    }
    if (stopped) return;
    const record: Beat = { at: new Date().toISOString(), pid: process.pid, ok: !error, ...(error ? { error } : {}) };
    // Written aside and renamed, so the health check never reads half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify(record));
    renameSync(`${file}.tmp`, file);
  };
  void beat().catch(() => undefined);
  const timer = setInterval(() => void beat().catch(() => undefined), intervalMs);
  timer.unref();
  return () => { stopped = true; clearInterval(timer); };
}

/** The verdict of `clearance worker --health`. */
export function checkHeartbeat(file = HEARTBEAT_FILE, now = Date.now(), maxAgeMs = MAX_AGE_MS): { ok: boolean; message: string } {
  let beat: Beat;
  try {
    beat = JSON.parse(readFileSync(file, 'utf8')) as Beat;
  } catch {
    return { ok: false, message: `no worker heartbeat at ${file} (the worker has not started, or runs in another container)` };
  }
  const age = now - Date.parse(beat.at);
  if (!(age <= maxAgeMs)) return { ok: false, message: `the worker's last heartbeat is ${Math.round(age / 1000)} s old (pid ${beat.pid})` };
  if (!beat.ok) return { ok: false, message: `the worker cannot reach its stores: ${beat.error}` };
  return { ok: true, message: `worker ${beat.pid} alive, stores reachable (${Math.round(age / 1000)} s ago)` };
}

export function healthMain(): void {
  const { ok, message } = checkHeartbeat();
  (ok ? process.stdout : process.stderr).write(`${message}\n`);
  process.exit(ok ? 0 : 1);
}

import { existsSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { SHARED_MODEL } from './harness.ts';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Whether a suite that needs `what` can run. Locally a missing service skips the suite; with
 * CI=true it fails the run instead, so a CI machine without Postgres, Redis, Chromium or the model
 * cannot pass by testing less.
 */
export function available(what: string, ok: boolean): boolean {
  if (!ok && process.env.CI === 'true') {
    throw new Error(`CI=true but ${what} is not available; .ci/run starts the services and installs what the tests need`);
  }
  // Skipping locally is allowed, but never silent.
  if (!ok) process.stderr.write(`\n  SKIPPED: ${what} is not available, so the suites that need it do not run (CI=true makes this a failure)\n\n`);
  return ok;
}

export async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return available(`PostgreSQL at ${PG_URL}`, true);
  } catch {
    return available(`PostgreSQL at ${PG_URL}`, false);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function redisReachable(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => undefined);
  let ok: boolean;
  try {
    await r.connect();
    ok = (await r.ping()) === 'PONG';
  } catch {
    ok = false;
  } finally {
    r.disconnect();
  }
  return available(`Redis at ${REDIS_URL}`, ok);
}

export const chromiumInstalled = () => available(`Chromium at ${CHROMIUM}`, existsSync(CHROMIUM));

export const modelPath = () => process.env.TEST_MODEL_PATH ?? SHARED_MODEL;
export const modelAvailable = () => available(`the embedding model at ${modelPath()}`, existsSync(`${modelPath()}/config.json`));

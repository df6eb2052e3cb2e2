import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { BullMqJobRunner } from '../src/jobs/bullmq.ts';
import { jobRunnerSuite } from './support/job-runner-suite.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function redisReachable(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Deletes every key under the prefix (queues, job schedulers, locks). */
export async function dropPrefix(prefix: string) {
  const r = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

describe.runIf(await redisReachable())('BullMQ on Redis', () => {
  let prefix = '';
  jobRunnerSuite('BullMqJobRunner', {
    create: (deps) => {
      // A fresh prefix per test, shared by the "restarted" runner within it.
      prefix ||= `clearance-test-${randomBytes(4).toString('hex')}`;
      return new BullMqJobRunner({ ...deps, config: { ...deps.config, REDIS_URL } }, { prefix, lockDurationMs: 5_000 });
    },
    cleanup: async () => {
      await dropPrefix(prefix);
      prefix = '';
    },
  });
});

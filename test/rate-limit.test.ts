import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { RateLimited, RateLimiter } from '../src/api/rate-limit.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';

describe('RateLimiter', () => {
  it('allows a burst, then one request per refill interval, per caller', () => {
    let t = 0;
    const rl = new RateLimiter(60, () => t); // one a second, bursts of 10
    for (let i = 0; i < 10; i++) rl.take('ana');
    const err = (() => { try { rl.take('ana'); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(RateLimited);
    expect((err as RateLimited).retryAfterSeconds).toBe(1);
    rl.take('ben'); // another caller has its own bucket
    t += 1000;
    rl.take('ana');
    expect(() => rl.take('ana')).toThrow(RateLimited);
    t += 60_000;
    for (let i = 0; i < 10; i++) rl.take('ana');
  });

  it('is off at 0', () => {
    const rl = new RateLimiter(0, () => 0);
    for (let i = 0; i < 10_000; i++) rl.take('x');
  });
});

describe('search rate limit over HTTP', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const req = requester(() => app);
  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', SEARCH_RATE_LIMIT: '60' } });
    app = createApp(h, createAuthenticator(h.config));
  });
  afterAll(() => h.cleanup());

  it('answers 429 problem+json with Retry-After once a caller exceeds the limit; others are unaffected', async () => {
    const ana = await mintDevToken({ email: 'ana@acme.test', dataDir: h.config.dataDir });
    const ben = await mintDevToken({ email: 'ben@acme.test', dataDir: h.config.dataDir });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await req('/v1/search', { token: ana, body: { query: 'q' } })).status);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    const limited = await req('/v1/search', { token: ana, body: { query: 'q' } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await req('/v1/search', { token: ben, body: { query: 'q' } })).status).toBe(200);
  });
});

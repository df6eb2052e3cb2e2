import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { listen } from '../src/api/server.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';

const ADMIN = 'admin-token-0123456789';

/** Behaviour only visible through a real HTTP server and a pooled keep-alive client. */
describe('the HTTP server', () => {
  let h: Harness;
  let server: Awaited<ReturnType<typeof listen>>;
  let base: string;
  beforeAll(async () => {
    h = await createHarness({ env: { ADMIN_TOKEN: ADMIN, MAX_BODY_BYTES: '100000' } });
    const app = createApp(h, createAuthenticator(h.config));
    server = await listen(app, { port: 0, hostname: '127.0.0.1' });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server.close();
    await h.cleanup();
  });

  it.each([
    ['with a Content-Length', false],
    ['chunked, without one', true],
  ])('answers an oversized body (%s) with 413 and the same pooled client goes on working', async (_how, chunked) => {
    const dispatcher = new Agent({ connections: 1 });
    try {
      const big = JSON.stringify({ query: 'x'.repeat(2_000_000) });
      const body = chunked ? new Blob([big]).stream() : big;
      const res = await fetch(`${base}/v1/search`, {
        method: 'POST', body, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, dispatcher, duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect((await res.json()).detail).toMatch(/exceeds 100000 bytes/);
      for (let i = 0; i < 3; i++) {
        const ok = await fetch(`${base}/healthz`, { dispatcher } as RequestInit);
        expect(ok.status).toBe(200);
        await ok.text();
      }
    } finally {
      await dispatcher.close();
    }
  });
});

import { createApp } from '../../src/api/app.ts';
import { listen } from '../../src/api/server.ts';
import { createAuthenticator } from '../../src/identity/index.ts';
import { search } from '../../src/retrieval/search.ts';
import { startWorkers } from '../../src/services.ts';
import { createHarness, userCtx, type Harness } from './harness.ts';

export const NOTIFY_ADMIN = 'notify-e2e-admin-token-0123456';

export interface NotifyWorld {
  h: Harness;
  /** Where the service listens; PUBLIC_BASE_URL when notifications are on. */
  baseUrl: string;
  admin(path: string, body?: unknown, method?: string): Promise<{ status: number; body: any }>;
  /** Document ids the user finds for the query (every visible chunk). */
  visible(email: string, query: string): Promise<string[]>;
  /** Texts of the chunks the user finds for the query. */
  texts(email: string, query: string): Promise<string[]>;
  syncAndWait(sourceId: string, mode?: 'full' | 'incremental'): Promise<any>;
  close(): Promise<void>;
}

/**
 * The service as a real HTTP server with workers running and no schedule ticking, so that a fake
 * upstream can reach its receivers: with `notifications: true` PUBLIC_BASE_URL is this server.
 */
export async function startNotifyWorld(opts: { notifications: boolean; env?: Record<string, string> }): Promise<NotifyWorld> {
  const h = await createHarness({
    env: {
      ADMIN_TOKEN: NOTIFY_ADMIN, NOTIFICATION_DEBOUNCE_MS: '1000', NOTIFICATION_RENEW_SECONDS: '3600',
      ...(opts.notifications ? { PUBLIC_BASE_URL: 'http://127.0.0.1:1' } : {}), ...opts.env,
    },
  });
  let app: ReturnType<typeof createApp> | null = null;
  const server = await listen({ fetch: (req: Request) => (app ? app.fetch(req) : new Response('starting', { status: 503 })) }, { port: 0, hostname: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${server.port}`;
  if (opts.notifications) h.config.PUBLIC_BASE_URL = baseUrl;
  app = createApp(h, createAuthenticator(h.config));
  await startWorkers(h);

  const admin = async (path: string, body?: unknown, method?: string) => {
    const res = await app!.request(path, {
      method: method ?? (body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${NOTIFY_ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const hits = (email: string, query: string) => search({ ctx: userCtx(h, email, []), input: { query, topK: 100 } });
  return {
    h, baseUrl, admin,
    visible: async (email, query) => [...new Set((await hits(email, query)).map((r) => r.documentId))].sort(),
    texts: async (email, query) => (await hits(email, query)).map((r) => r.text),
    async syncAndWait(sourceId, mode) {
      const { body } = await admin(`/v1/sources/${sourceId}/sync`, mode ? { mode } : {});
      return waitUntil(async () => {
        const run = (await admin(`/v1/runs/${body.runId}`)).body;
        return run.status === 'succeeded' || run.status === 'failed' ? run : null;
      }, 60_000);
    },
    async close() {
      const { closeServices } = await import('../../src/services.ts');
      await closeServices(h).catch(() => undefined);
      await server.close();
      await h.cleanup().catch(() => undefined);
    },
  };
}

/** POSTs `count` requests with at most `concurrency` in flight (keep-alive connections); the statuses. */
export async function postMany(url: string, count: number, init: () => RequestInit, concurrency = 50): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      const res = await fetch(url, { method: 'POST', ...init() });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
  }));
  return statuses;
}

/** Polls until fn gives a value; throws after timeoutMs. Returns the value and the time it took. */
export async function waitUntil<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Milliseconds until fn holds (polling every 25 ms), or throws after timeoutMs. */
export async function msUntil(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  await waitUntil(async () => ((await fn()) ? true : null), timeoutMs, what);
  return Date.now() - started;
}

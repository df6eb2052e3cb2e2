import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { listen } from '../src/api/server.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { startWorkers } from '../src/services.ts';
import { INTERNALS, fuzzRequests, type FuzzRequest } from './support/fuzz.ts';
import { createHarness, type Harness } from './support/harness.ts';

const ADMIN = 'fuzz-admin-token-0123456789abc';
const ALICE_ONLY = 'ALICEONLY7731';
const BOB_ONLY = 'BOBONLY4412';
/** Requests per run; CI runs the default, `FUZZ_REQUESTS` (or `npx clearance bench fuzz`) more. */
const COUNT = Number(process.env.FUZZ_REQUESTS ?? 5000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

/**
 * Hostile input through the real HTTP server: thousands of generated requests to every route. None
 * may produce a 5xx or leak internals, none may show one person another person's text, and the
 * server must still answer ordinary requests afterwards.
 */
describe('hostile HTTP input', () => {
  let h: Harness;
  let server: Awaited<ReturnType<typeof listen>>;
  let base: string;
  let app: ReturnType<typeof createApp>;
  const tokens: Record<string, string> = {};
  const ids: string[] = [];

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, MAX_BODY_BYTES: '100000', SEARCH_RATE_LIMIT: '0', COMPLIANCE_GROUP: 'compliance' } });
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    const corpus = path.join(h.dir, 'corpus');
    for (const [folder, who, marker] of [['alice', 'user:alice@acme.test', ALICE_ONLY], ['bob', 'user:bob@acme.test', BOB_ONLY]] as const) {
      await mkdir(path.join(corpus, folder), { recursive: true });
      await writeFile(path.join(corpus, folder, '.clearance-acl.json'), JSON.stringify({ read: [who] }));
      await writeFile(path.join(corpus, folder, 'notes.md'), `# Notes\n\nThe quarterly plan mentions ${marker} in its budget section.`);
    }
    tokens.alice = await mintDevToken({ email: 'alice@acme.test', dataDir: h.config.dataDir });
    tokens.bob = await mintDevToken({ email: 'bob@acme.test', dataDir: h.config.dataDir });
    tokens.rita = await mintDevToken({ email: 'rita@acme.test', groups: ['compliance'], dataDir: h.config.dataDir });
    tokens.admin = ADMIN;
    const created = await app.request('/v1/sources', {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fuzz-corpus', type: 'filesystem', config: { path: corpus } }),
    });
    const source = await created.json();
    const sync = await app.request(`/v1/sources/${source.id}/sync`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    const { runId } = await sync.json();
    await h.jobs.idle();
    ids.push(runId, ...(await h.metadata.documents.list({ sourceId: source.id, limit: 10 })).map((d) => d.id));
    // The source itself is left out of the ids: deleting it early would leave nothing to leak.
    server = await listen(app, { port: 0, hostname: '127.0.0.1' });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.close();
    await h?.cleanup();
  });

  async function send(r: FuzzRequest): Promise<{ status: number; text: string }> {
    const res = await fetch(base + r.path, { method: r.method, headers: r.headers, body: r.body as BodyInit | undefined, redirect: 'manual' });
    return { status: res.status, text: await res.text() };
  }

  it(`answers ${COUNT} generated requests without a 5xx, an internal detail or another person's text (seed ${SEED})`, async () => {
    // The world is real: both people see their own note before the storm.
    const mine = async (who: string) => (await send({ method: 'POST', path: '/v1/search', headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'quarterly plan budget' }), as: who })).text;
    expect(await mine('alice')).toContain(ALICE_ONLY);
    expect(await mine('bob')).toContain(BOB_ONLY);

    const requests = fc.sample(fuzzRequests(app.routes, { tokens, ids }), { numRuns: COUNT, seed: SEED });
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < requests.length && failures.length < 5) {
        const r = requests[next++]!;
        let got: { status: number; text: string };
        try {
          got = await send(r);
        } catch (err) {
          // A header no HTTP client may send (a NUL in it) never reaches the server.
          if (/invalid header/i.test((err as Error).message)) continue;
          failures.push(`${r.method} ${r.path} [headers ${JSON.stringify(r.headers).slice(0, 200)} body ${typeof r.body === 'string' ? r.body.length : r.body?.length}]: transport error ${(err as Error).message} (${String((err as Error).cause)})`);
          continue;
        }
        statuses.set(got.status, (statuses.get(got.status) ?? 0) + 1);
        const what = `${r.method} ${r.path.slice(0, 120)} as ${r.as} → ${got.status}`;
        if (got.status >= 500) failures.push(`${what}: ${got.text.slice(0, 300)}`);
        for (const re of INTERNALS) if (re.test(got.text)) failures.push(`${what}: internal detail ${re}: ${got.text.slice(0, 300)}`);
        if (r.as !== 'alice' && got.text.includes(ALICE_ONLY)) failures.push(`${what}: alice's text shown to ${r.as}`);
        if (r.as !== 'bob' && got.text.includes(BOB_ONLY)) failures.push(`${what}: bob's text shown to ${r.as}`);
      }
    }));
    expect(failures, `seed ${SEED} (replay with FUZZ_SEED=${SEED})`).toEqual([]);
    // The storm reached the routes rather than bouncing off authentication alone.
    expect([...statuses.entries()].filter(([s]) => s >= 200 && s < 300).reduce((n, [, c]) => n + c, 0)).toBeGreaterThan(COUNT / 20);

    // Still serving ordinary requests, to the right people.
    expect((await send({ method: 'GET', path: '/healthz', headers: {}, as: 'nobody' })).status).toBe(200);
    expect(await mine('alice')).toContain(ALICE_ONLY);
    expect(await mine('bob')).not.toContain(ALICE_ONLY);
  }, 600_000);
});

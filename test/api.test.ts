import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';
import { startWorkers } from '../src/services.ts';

const ADMIN = 'test-admin-token-0123456789';

describe('HTTP API', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let corpus: string;
  const tokens: Record<string, string> = {};
  const req = requester(() => app);

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, COMPLIANCE_GROUP: 'compliance', MAX_BODY_BYTES: '4096' } });
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    corpus = path.join(h.dir, 'corpus');
    await mkdir(path.join(corpus, 'eng'), { recursive: true });
    await mkdir(path.join(corpus, 'fin'), { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(corpus, 'welcome.md'), '# Welcome\n\nEveryone at Acme can read the holiday calendar.');
    await writeFile(path.join(corpus, 'eng/.clearance-acl.json'), JSON.stringify({ read: ['group:engineering'] }));
    await writeFile(path.join(corpus, 'eng/oncall.md'), '# On-call\n\nPage the incident commander for a production outage.');
    await writeFile(path.join(corpus, 'fin/.clearance-acl.json'), JSON.stringify({ read: ['group:finance', 'user:Carol@acme.test'] }));
    await writeFile(path.join(corpus, 'fin/budget.md'), '# Budget\n\nExpenses over 5000 dollars need CFO approval.');
    for (const [name, groups] of [['alice', ['engineering']], ['bob', ['finance']], ['carol', []]] as const) {
      tokens[name] = await mintDevToken({ email: `${name}@acme.test`, groups: [...groups], dataDir: h.config.dataDir });
    }
  });
  afterAll(() => h.cleanup());

  async function syncAndWait(sourceId: string, mode?: string) {
    const res = await req(`/v1/sources/${sourceId}/sync`, { token: ADMIN, body: mode ? { mode } : {} });
    expect(res.status).toBe(202);
    const { runId } = await res.json();
    await h.jobs.idle();
    return (await req(`/v1/runs/${runId}`, { token: ADMIN })).json();
  }

  let sourceId: string;
  it('adds a filesystem source after testing it, and syncs it', async () => {
    const res = await req('/v1/sources', { token: ADMIN, body: { name: 'acme', type: 'filesystem', config: { path: corpus } } });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body).toMatchObject({ name: 'acme', type: 'filesystem', config: { path: corpus }, status: 'active' });
    sourceId = body.id;
    const run = await syncAndWait(sourceId);
    expect(run).toMatchObject({ runId: expect.any(String), sourceId, status: 'succeeded', mode: 'full' });
    expect(run.stats).toMatchObject({ seen: 3, added: 3, failed: 0, deleted: 0 });
    expect(run.stats.chunksEmbedded).toBeGreaterThan(0);
    const list = await (await req('/v1/sources', { token: ADMIN })).json();
    expect(list.sources.map((s: { id: string }) => s.id)).toContain(sourceId);
  });

  it('answers the same query differently per caller', async () => {
    const titles = async (token: string) => {
      const res = await req('/v1/search', { token, body: { query: 'approval of expenses', topK: 50 } });
      expect(res.status).toBe(200);
      const { results } = await res.json();
      for (const r of results) expect(r).toMatchObject({ documentId: expect.any(String), chunkId: expect.any(String), sourceId, sourceType: 'filesystem', text: expect.any(String), score: expect.any(Number), freshness: { status: 'fresh', ageDays: expect.any(Number) } });
      return [...new Set(results.map((r: { title: string }) => r.title))].sort();
    };
    expect(await titles(tokens.alice!)).toEqual(['On-call', 'Welcome']);
    expect(await titles(tokens.bob!)).toEqual(['Budget', 'Welcome']);
    expect(await titles(tokens.carol!)).toEqual(['Budget', 'Welcome']); // user entry is case-insensitive
  });

  it('writes one audit record per search', async () => {
    await req('/v1/search', { token: tokens.alice, body: { query: 'outage paging' } });
    const res = await req('/v1/audit?user=alice@acme.test', { token: ADMIN });
    const { records } = await res.json();
    expect(records[0]).toMatchObject({ user: 'alice@acme.test', query: 'outage paging', action: 'search' });
    expect(records[0].documentIds.length).toBeGreaterThan(0);
  });

  it('limits an agent key to its sources (intersected with the user)', async () => {
    const created = await req('/v1/agents', { token: ADMIN, body: { name: 'helpdesk-bot', sourceIds: [] } });
    expect(created.status).toBe(201);
    const { key } = await created.json();
    const res = await req('/v1/search', { token: tokens.alice, body: { query: 'anything' }, headers: { 'x-agent-key': key } });
    expect((await res.json()).results).toEqual([]);
    const scoped = await (await req('/v1/agents', { token: ADMIN, body: { name: 'wiki-bot', sourceIds: [sourceId] } })).json();
    const ok = await (await req('/v1/search', { token: tokens.alice, body: { query: 'anything', topK: 50 }, headers: { 'x-agent-key': scoped.key } })).json();
    expect(ok.results.length).toBeGreaterThan(0);
    const audit = await (await req('/v1/audit?agent=wiki-bot', { token: ADMIN })).json();
    expect(audit.records).toHaveLength(1);
    expect((await req('/v1/search', { token: tokens.alice, body: { query: 'x' }, headers: { 'x-agent-key': 'nope' } })).status).toBe(403);
  });

  it('refuses missing or bad tokens with 401 and users on admin endpoints with 403', async () => {
    const noAuth = await req('/v1/search', { body: { query: 'x' } });
    expect(noAuth.status).toBe(401);
    expect(noAuth.headers.get('content-type')).toContain('application/problem+json');
    expect(await noAuth.json()).toMatchObject({ type: expect.any(String), title: 'Unauthorized', status: 401, detail: expect.any(String) });
    expect((await req('/v1/search', { token: 'garbage', body: { query: 'x' } })).status).toBe(401);
    expect((await req('/v1/sources', { token: tokens.alice })).status).toBe(403);
    expect((await req(`/v1/sources/${sourceId}/sync`, { token: tokens.alice, body: {} })).status).toBe(403);
  });

  it('treats malformed, invalid and oversized bodies as 4xx problems', async () => {
    const bad = await req('/v1/search', { token: tokens.alice, body: '{"query": ' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ title: 'Bad Request', detail: expect.stringContaining('JSON') });
    expect((await req('/v1/search', { token: tokens.alice, body: { query: '' } })).status).toBe(400);
    expect((await req('/v1/search', { token: tokens.alice, body: { query: 'x', topK: 101 } })).status).toBe(400);
    expect((await req('/v1/search', { token: tokens.alice, body: { query: 'x', extra: 1 } })).status).toBe(400);
    expect((await req('/v1/search', { token: tokens.alice, body: { query: 'x'.repeat(5000) } })).status).toBe(413);
    expect((await req('/v1/search', { token: tokens.alice, body: 'query=x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await req('/v1/sources', { token: ADMIN, body: { name: 'x', type: 'gopher', config: {} } })).status).toBe(400);
    expect((await req('/v1/sources', { token: ADMIN, body: { name: 'x', type: 'filesystem', config: {} } })).status).toBe(400);
  });

  it('masks a freshness webhook URL when showing a source, and keeps it when the masked value comes back', async () => {
    const hook = 'https://hooks.example.test/services/T000/B000/secret-part';
    const created = await (await req('/v1/sources', { token: ADMIN, body: { name: 'hooked', type: 'filesystem', config: { path: corpus }, freshness: { maxAgeDays: 30, webhookUrl: hook } } })).json();
    expect(created.freshness.webhookUrl).toBe('https://hooks.example.test/***');
    const shown = await (await req(`/v1/sources/${created.id}`, { token: ADMIN })).json();
    expect(JSON.stringify(shown)).not.toContain('secret-part');
    const patched = await req(`/v1/sources/${created.id}`, { method: 'PATCH', token: ADMIN, body: { freshness: { ...shown.freshness, maxAgeDays: 60 } } });
    expect(patched.status).toBe(200);
    const stored = await h.metadata.sources.get(created.id);
    expect(stored?.freshness).toMatchObject({ maxAgeDays: 60, webhookUrl: hook });
    expect((await req(`/v1/sources/${created.id}`, { method: 'DELETE', token: ADMIN })).status).toBe(204);
  });

  it('fails the connection test with 422 and does not save the source', async () => {
    const res = await req('/v1/sources', { token: ADMIN, body: { name: 'ghost', type: 'filesystem', config: { path: path.join(h.dir, 'missing') } } });
    expect(res.status).toBe(422);
    expect((await res.json()).detail).toMatch(/does not exist/);
    const list = await (await req('/v1/sources', { token: ADMIN })).json();
    expect(list.sources.map((s: { name: string }) => s.name)).not.toContain('ghost');
  });

  it('answers unknown ids with the same 404 whatever the id looks like', async () => {
    const a = await req('/v1/sources/00000000-0000-4000-8000-000000000000', { token: ADMIN });
    const b = await req('/v1/sources/not-a-uuid', { token: ADMIN });
    const c = await req('/v1/runs/00000000-0000-4000-8000-000000000000', { token: ADMIN });
    expect([a.status, b.status, c.status]).toEqual([404, 404, 404]);
    expect((await a.json()).detail).toBe((await b.json()).detail);
  });

  it('serves the MCP search tool with the caller\'s permissions', async () => {
    const call = (token: string, body: unknown) => req('/mcp', { token, body, headers: { accept: 'application/json, text/event-stream' } });
    const init = await call(tokens.bob!, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(init.status).toBe(200);
    const list = await (await call(tokens.bob!, { jsonrpc: '2.0', id: 2, method: 'tools/list' })).json();
    expect(list.result.tools.map((t: { name: string }) => t.name)).toContain('search');
    const res = await (await call(tokens.bob!, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'search', arguments: { query: 'budget', topK: 50 } } })).json();
    const titles = new Set(res.result.structuredContent.results.map((r: { title: string }) => r.title));
    expect(titles).toEqual(new Set(['Budget', 'Welcome']));
    expect((await req('/mcp', { body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })).status).toBe(401);
  });

  it('exposes health, readiness and metrics', async () => {
    expect((await req('/healthz')).status).toBe(200);
    const ready = await req('/readyz');
    expect(ready.status).toBe(200);
    expect((await ready.json()).checks).toEqual({ metadata: 'ok', vectors: 'ok', queue: 'ok' });
    expect(await (await req('/metrics')).text()).toContain('clearance_http_request_duration_seconds');
    expect(await (await req('/')).text()).toContain('Clearance');
  });

  it('deletes a source with every vector and record', async () => {
    const res = await req(`/v1/sources/${sourceId}`, { method: 'DELETE', token: ADMIN });
    expect(res.status).toBe(204);
    expect(await h.vectors.count({ sourceId })).toBe(0);
    expect(await h.metadata.documents.count(sourceId)).toBe(0);
    expect((await req(`/v1/sources/${sourceId}`, { token: ADMIN })).status).toBe(404);
    const { results } = await (await req('/v1/search', { token: tokens.alice, body: { query: 'on-call' } })).json();
    expect(results).toEqual([]);
  });
});

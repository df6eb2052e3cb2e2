import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { startWorkers } from '../src/services.ts';
import { createHarness, syncNow, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';

const ADMIN = 'test-admin-token-0123456789';
type Rec = { seq: number; action: string; outcome: string; actor: string | null; agent: string | null; target: string | null; documents: { id: string; title: string; url: string | null }[]; details: Record<string, unknown> | null };

/**
 * The governance surface through HTTP: one audit record per auditable event, access explained
 * with the search rule, and each kill switch measured by the first request after it.
 */
describe('governance API', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const req = requester(() => app);
  const tokens: Record<string, string> = {};
  let corpus: string;
  let sourceId: string;
  let other: string;
  const docs: Record<string, string> = {};

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, COMPLIANCE_GROUP: 'compliance' } });
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    corpus = path.join(h.dir, 'corpus');
    await mkdir(path.join(corpus, 'eng'), { recursive: true });
    await mkdir(path.join(corpus, 'hr'), { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(corpus, 'welcome.md'), '# Welcome\n\nEveryone can read the holiday calendar.');
    await writeFile(path.join(corpus, 'eng/.clearance-acl.json'), JSON.stringify({ read: ['group:engineering', 'user:erin@acme.test'] }));
    await writeFile(path.join(corpus, 'eng/oncall.md'), '# On-call\n\nPage the incident commander for an outage.');
    await writeFile(path.join(corpus, 'hr/.clearance-acl.json'), JSON.stringify({ read: ['group:hr'] }));
    await writeFile(path.join(corpus, 'hr/salaries.md'), '# Salaries\n\nSalary bands for every level.');
    const second = path.join(h.dir, 'second');
    await mkdir(second, { recursive: true });
    await writeFile(path.join(second, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(second, 'handbook.md'), '# Handbook\n\nHow we work: the holiday calendar and more.');
    for (const [name, groups] of [['alice', ['engineering']], ['dana', ['hr']], ['erin', []], ['carl', ['compliance']]] as const) {
      tokens[name] = await mintDevToken({ email: `${name}@acme.test`, groups: [...groups], dataDir: h.config.dataDir });
    }
    sourceId = (await (await req('/v1/sources', { token: ADMIN, body: { name: 'acme', type: 'filesystem', config: { path: corpus } } })).json()).id;
    other = (await (await req('/v1/sources', { token: ADMIN, body: { name: 'second', type: 'filesystem', config: { path: second } } })).json()).id;
    expect((await syncNow(h, sourceId)).status).toBe('succeeded');
    expect((await syncNow(h, other)).status).toBe('succeeded');
    for (const d of await h.metadata.documents.list({ limit: 100 })) docs[d.title] = d.id;
  });
  afterAll(() => h.cleanup());

  const records = async (): Promise<Rec[]> => (await (await req('/v1/audit?limit=1000', { token: ADMIN })).json()).records;
  /** Runs `fn` and returns the audit records it produced (oldest first). */
  async function produced(fn: () => unknown): Promise<Rec[]> {
    const before = (await records())[0]?.seq ?? 0;
    await fn();
    return (await records()).filter((r) => r.seq > before).reverse();
  }
  const titles = async (token: string, headers: Record<string, string> = {}, body: Record<string, unknown> = {}) => {
    const res = await req('/v1/search', { token, headers, body: { query: 'holiday calendar outage salary', topK: 100, ...body } });
    return { status: res.status, titles: res.status === 200 ? [...new Set((await res.json()).results.map((r: { title: string }) => r.title))].sort() : [] };
  };
  const mcp = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    req('/mcp', { token, body, headers: { accept: 'application/json, text/event-stream', ...headers } });

  describe('audit trail: exactly one record per auditable event', () => {
    let agentKey: string;
    let agentId: string;

    it('a search: who, which agent, the query and the documents returned by name', async () => {
      const recs = await produced(() => titles(tokens.dana!));
      expect(recs).toHaveLength(1);
      expect(recs[0]).toMatchObject({ action: 'search', outcome: 'ok', actor: 'dana@acme.test', agent: null });
      expect(recs[0]!.documents.map((d) => d.title).sort()).toEqual(['Handbook', 'Salaries', 'Welcome']);
    });

    it('an MCP tool call (and nothing for MCP calls that are not tool calls)', async () => {
      expect(await produced(() => mcp(tokens.dana!, { jsonrpc: '2.0', id: 1, method: 'tools/list' }))).toHaveLength(0);
      const recs = await produced(() => mcp(tokens.dana!, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'search', arguments: { query: 'salary', topK: 5 } } }));
      expect(recs).toHaveLength(1);
      expect(recs[0]).toMatchObject({ action: 'mcp.search', outcome: 'ok', actor: 'dana@acme.test' });
    });

    it('admin actions: agent created, source changed, synced', async () => {
      let recs = await produced(async () => {
        const res = await req('/v1/agents', { token: ADMIN, body: { name: 'hr-bot', sourceIds: [sourceId] } });
        ({ key: agentKey, id: agentId } = await res.json());
      });
      expect(recs).toMatchObject([{ action: 'agent.create', outcome: 'ok', actor: 'admin-token', target: agentId }]);
      recs = await produced(() => req(`/v1/sources/${other}`, { token: ADMIN, method: 'PATCH', body: { schedule: null } }));
      expect(recs).toMatchObject([{ action: 'source.update', outcome: 'ok', target: other }]);
      recs = await produced(async () => {
        await req(`/v1/sources/${other}/sync`, { token: ADMIN, body: {} });
        await h.jobs.idle();
      });
      expect(recs).toMatchObject([{ action: 'source.sync', outcome: 'ok', target: other }]);
    });

    it('a search through an agent names the agent', async () => {
      const recs = await produced(() => titles(tokens.dana!, { 'x-agent-key': agentKey }));
      expect(recs).toMatchObject([{ action: 'search', outcome: 'ok', agent: 'hr-bot', actor: 'dana@acme.test' }]);
      expect(recs[0]!.documents.map((d) => d.title).sort()).toEqual(['Salaries', 'Welcome']);
    });

    it('denied: an agent key used outside its sources', async () => {
      let out!: { status: number };
      const recs = await produced(async () => { out = await titles(tokens.dana!, { 'x-agent-key': agentKey }, { filter: { sourceIds: [other] } }); });
      expect(out.status).toBe(403);
      expect(recs).toMatchObject([{ action: 'search', outcome: 'denied', agent: 'hr-bot', details: { reason: 'agent key does not cover the requested sources' } }]);
    });

    it('denied: an admin endpoint and a compliance endpoint called without the role', async () => {
      let recs = await produced(() => req('/v1/sources', { token: tokens.dana!, body: { name: 'x', type: 'filesystem', config: { path: corpus } } }));
      expect(recs).toMatchObject([{ action: 'source.create', outcome: 'denied', actor: 'dana@acme.test', target: 'POST /v1/sources' }]);
      recs = await produced(() => req('/v1/audit', { token: tokens.dana! }));
      expect(recs).toMatchObject([{ action: 'audit.read', outcome: 'denied', actor: 'dana@acme.test' }]);
      recs = await produced(() => req(`/v1/access/explain?user=dana@acme.test&documentId=${docs.Salaries}`, { token: tokens.alice! }));
      expect(recs).toMatchObject([{ action: 'access.explain', outcome: 'denied', actor: 'alice@acme.test' }]);
    });

    it('compliance actions: explain and document access are recorded; reading the trail is not', async () => {
      let recs = await produced(() => req(`/v1/access/explain?user=erin@acme.test&documentId=${docs['On-call']}`, { token: tokens.carl! }));
      expect(recs).toMatchObject([{ action: 'access.explain', outcome: 'ok', actor: 'carl@acme.test', target: docs['On-call'], details: { user: 'erin@acme.test', allowed: true } }]);
      recs = await produced(() => req(`/v1/documents/${docs['On-call']}/access`, { token: tokens.carl! }));
      expect(recs).toMatchObject([{ action: 'document.access', outcome: 'ok' }]);
      expect(await produced(() => req('/v1/audit/verify', { token: tokens.carl! }))).toHaveLength(0);
    });

    it('agent key revoked, then its use denied as revoked; an expired key denied as expired', async () => {
      let recs = await produced(() => req(`/v1/agents/${agentId}`, { token: ADMIN, method: 'DELETE' }));
      expect(recs).toMatchObject([{ action: 'agent.revoke', outcome: 'ok', target: agentId }]);
      let out!: { status: number };
      recs = await produced(async () => { out = await titles(tokens.dana!, { 'x-agent-key': agentKey }); });
      expect(out.status).toBe(403);
      expect(recs).toMatchObject([{ action: 'search', outcome: 'denied', agent: 'hr-bot', details: { reason: 'agent key revoked' } }]);

      const { key, id } = await (await req('/v1/agents', { token: ADMIN, body: { name: 'temp', sourceIds: [sourceId] } })).json();
      expect((await titles(tokens.dana!, { 'x-agent-key': key })).status).toBe(200);
      recs = await produced(() => req(`/v1/agents/${id}`, { token: ADMIN, method: 'PATCH', body: { expiresAt: new Date(Date.now() - 1000).toISOString() } }));
      expect(recs).toMatchObject([{ action: 'agent.update', outcome: 'ok', target: id }]);
      recs = await produced(async () => { out = await titles(tokens.dana!, { 'x-agent-key': key }); });
      expect(out.status).toBe(403);
      expect(recs).toMatchObject([{ action: 'search', outcome: 'denied', agent: 'temp', details: { reason: 'agent key expired' } }]);
      recs = await produced(() => mcp(tokens.dana!, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'search', arguments: { query: 'salary' } } }, { 'x-agent-key': key }));
      expect(recs).toMatchObject([{ action: 'mcp.search', outcome: 'denied', details: { reason: 'agent key expired' } }]);
      const listed = (await (await req('/v1/agents', { token: ADMIN })).json()).agents;
      expect(listed.map((a: { name: string; status: string }) => [a.name, a.status])).toEqual([['hr-bot', 'revoked'], ['temp', 'expired']]);
    });

    it('filters by user, agent, action and document, and exports CSV', async () => {
      const q = async (s: string) => (await (await req(`/v1/audit?${s}`, { token: tokens.carl! })).json()).records as Rec[];
      expect((await q('user=DANA@acme.test&agent=hr-bot&action=search&outcome=ok')).length).toBe(1);
      const withSalaries = await q(`documentId=${docs.Salaries}`);
      expect(withSalaries.length).toBeGreaterThan(0);
      for (const r of withSalaries) expect(r.documents.map((d) => d.id).includes(docs.Salaries!) || r.target === docs.Salaries).toBe(true);
      const today = new Date().toISOString().slice(0, 10);
      expect((await q(`from=${today}&to=${today}&user=dana@acme.test`)).length).toBeGreaterThan(3);
      expect(await q('from=2001-01-01&to=2001-01-02')).toEqual([]);
      const csv = await req('/v1/audit?user=dana@acme.test&agent=hr-bot', { token: tokens.carl!, headers: { accept: 'text/csv' } });
      expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
      const lines = (await csv.text()).trim().split('\r\n');
      expect(lines[0]).toBe('seq,at,actor,agent,action,target,outcome,query,documentIds,documentTitles,documentUrls,sourceIds,requestId,details,hash');
      expect(lines.length).toBe(1 + (await q('user=dana@acme.test&agent=hr-bot')).length);
      expect(lines.some((l) => l.includes('Salaries'))).toBe(true);
      expect((await req('/v1/audit?format=csv', { token: tokens.carl! })).headers.get('content-disposition')).toMatch(/audit\.csv/);
      expect((await req('/v1/audit?from=yesterday', { token: tokens.carl! })).status).toBe(400);
    });

    it('the trail verifies', async () => {
      const v = await (await req('/v1/audit/verify', { token: tokens.carl! })).json();
      expect(v).toMatchObject({ ok: true });
      expect(v.records).toBe((await records()).length);
    });
  });

  describe('explain access', () => {
    const explain = async (user: string, doc: string, extra = '') =>
      (await req(`/v1/access/explain?user=${encodeURIComponent(user)}&documentId=${doc}${extra}`, { token: tokens.carl! })).json();

    it('names the granting ACL entries, or why nothing grants', async () => {
      expect(await explain('erin@acme.test', docs['On-call']!)).toMatchObject({
        allowed: true, user: 'erin@acme.test', documentId: docs['On-call'], reasons: [{ principal: 'user:erin@acme.test', via: [] }], asOf: expect.any(String),
      });
      expect(await explain('alice@acme.test', docs['On-call']!, '&groups=engineering')).toMatchObject({ allowed: true, reasons: [{ principal: 'group:engineering' }] });
      const denied = await explain('alice@acme.test', docs['On-call']!);
      expect(denied).toMatchObject({ allowed: false, reasons: [], denial: 'no_matching_principal' });
      expect(await explain('alice@acme.test', 'no-such-document')).toMatchObject({ allowed: false, denial: 'not_indexed' });
      expect((await req(`/v1/access/explain?user=not-an-email&documentId=${docs.Welcome}`, { token: tokens.carl! })).status).toBe(400);
    });

    it('follows nested source groups and names the chain', async () => {
      const s = await h.metadata.sources.get(other);
      await h.metadata.groups.replace(other, [
        { groupId: 'everyone-staff', memberEmails: ['frank@acme.test', 'gina@acme.test'], memberGroupIds: ['ops'] },
        { groupId: 'ops', memberEmails: ['frank@acme.test'], memberGroupIds: ['oncall'] },
        { groupId: 'oncall', memberEmails: ['frank@acme.test'] },
      ]);
      const [d] = await h.metadata.documents.byIds([docs.Handbook!]);
      await h.metadata.documents.upsert({ ...d!, acl: [`sgroup:${s!.id}/everyone-staff`, `sgroup:${s!.id}/ghost`] }, 'manual');
      expect(await explain('frank@acme.test', docs.Handbook!)).toMatchObject({
        allowed: true,
        reasons: [{ principal: `sgroup:${other}/everyone-staff`, via: [`sgroup:${other}/oncall`, `sgroup:${other}/ops`] }],
      });
      expect(await explain('gina@acme.test', docs.Handbook!)).toMatchObject({ allowed: true, reasons: [{ principal: `sgroup:${other}/everyone-staff`, via: [] }] });
      expect(await explain('hal@acme.test', docs.Handbook!)).toMatchObject({ allowed: false, denial: 'no_matching_principal', unresolved: [`sgroup:${other}/ghost`] });
      const access = await (await req(`/v1/documents/${docs.Handbook}/access`, { token: tokens.carl! })).json();
      expect(access).toMatchObject({ principals: [`sgroup:${other}/everyone-staff`, `sgroup:${other}/ghost`], users: ['frank@acme.test', 'gina@acme.test'] });
      const eng = await (await req(`/v1/documents/${docs['On-call']}/access`, { token: tokens.carl! })).json();
      expect(eng).toMatchObject({ principals: ['group:engineering', 'user:erin@acme.test'], users: ['erin@acme.test'], unenumerable: ['group:engineering'] });
      expect((await req('/v1/documents/nope/access', { token: tokens.carl! })).status).toBe(404);
      await h.metadata.documents.upsert({ ...d!, acl: ['everyone'] }, 'manual');
    });
  });

  describe('kill switches: the first request after each returns nothing from the affected scope', () => {
    it('disabling a source hides its documents at once; enabling restores them without re-embedding', async () => {
      const points = await h.vectors.count({ sourceId });
      const embedded = h.embedder as unknown as { textsEmbedded: number };
      const textsBefore = embedded.textsEmbedded;
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook', 'Salaries', 'Welcome']);
      const recs = await produced(() => req(`/v1/sources/${sourceId}`, { token: ADMIN, method: 'PATCH', body: { enabled: false } }));
      expect(recs).toMatchObject([{ action: 'source.disable', outcome: 'ok', target: sourceId }]);
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook']);
      expect((await explain2('dana@acme.test', docs.Salaries!)).denial).toBe('source_disabled');
      expect((await req(`/v1/sources/${sourceId}/sync`, { token: ADMIN, body: {} })).status).toBe(409);
      expect((await (await req(`/v1/sources/${sourceId}`, { token: ADMIN })).json()).enabled).toBe(false);
      const back = await produced(() => req(`/v1/sources/${sourceId}`, { token: ADMIN, method: 'PATCH', body: { enabled: true } }));
      expect(back).toMatchObject([{ action: 'source.enable', outcome: 'ok' }]);
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook', 'Salaries', 'Welcome']);
      expect(await h.vectors.count({ sourceId })).toBe(points);
      expect(embedded.textsEmbedded).toBe(textsBefore);
    });

    it('quarantining a document hides it from every search at once and across later syncs', async () => {
      const recs = await produced(() => req(`/v1/documents/${docs.Salaries}/quarantine`, { token: tokens.carl!, body: { reason: 'leaked salary bands' } }));
      expect(recs).toMatchObject([{ action: 'document.quarantine', outcome: 'ok', target: docs.Salaries, details: { reason: 'leaked salary bands' } }]);
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook', 'Welcome']);
      await writeFile(path.join(corpus, 'hr/salaries.md'), '# Salaries\n\nSalary bands for every level, revised.');
      expect((await syncNow(h, sourceId, 'full')).status).toBe('succeeded');
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook', 'Welcome']);
      expect((await explain2('dana@acme.test', docs.Salaries!)).denial).toBe('document_quarantined');
      const listed = (await (await req('/v1/quarantine', { token: tokens.carl! })).json()).documents;
      expect(listed).toMatchObject([{ documentId: docs.Salaries, reason: 'leaked salary bands', actor: 'carl@acme.test' }]);
      const lifted = await produced(() => req(`/v1/documents/${docs.Salaries}/quarantine`, { token: tokens.carl!, method: 'DELETE' }));
      expect(lifted).toMatchObject([{ action: 'document.unquarantine', outcome: 'ok' }]);
      expect((await titles(tokens.dana!)).titles).toEqual(['Handbook', 'Salaries', 'Welcome']);
      expect((await req(`/v1/documents/${docs.Salaries}/quarantine`, { token: tokens.carl!, method: 'DELETE' })).status).toBe(404);
    });

    it('revoking an agent key refuses its next request', async () => {
      const { key, id } = await (await req('/v1/agents', { token: ADMIN, body: { name: 'bot', sourceIds: [sourceId, other] } })).json();
      expect((await titles(tokens.dana!, { 'x-agent-key': key })).titles).toEqual(['Handbook', 'Salaries', 'Welcome']);
      expect((await req(`/v1/agents/${id}`, { token: ADMIN, method: 'DELETE' })).status).toBe(204);
      expect(await titles(tokens.dana!, { 'x-agent-key': key })).toEqual({ status: 403, titles: [] });
    });

    it('an agent key past its expiry is refused on its next request', async () => {
      const soon = new Date(Date.now() + 60_000).toISOString();
      const { key, id } = await (await req('/v1/agents', { token: ADMIN, body: { name: 'short', sourceIds: [sourceId], expiresAt: soon } })).json();
      expect((await titles(tokens.dana!, { 'x-agent-key': key })).status).toBe(200);
      const realNow = h.now;
      h.now = () => new Date(Date.now() + 120_000);
      try {
        expect(await titles(tokens.dana!, { 'x-agent-key': key })).toEqual({ status: 403, titles: [] });
      } finally {
        h.now = realNow;
      }
      expect((await (await req(`/v1/agents/${id}`, { token: ADMIN })).json()).status).toBe('active');
    });

    it('document fetch: the first fetch after quarantine or disabling the source is a 404', async () => {
      const fetch = async () => (await req(`/v1/documents/${docs.Salaries}`, { token: tokens.dana! })).status;
      expect(await fetch()).toBe(200);
      await req(`/v1/documents/${docs.Salaries}/quarantine`, { token: tokens.carl!, body: { reason: 'x' } });
      expect(await fetch()).toBe(404);
      await req(`/v1/documents/${docs.Salaries}/quarantine`, { token: tokens.carl!, method: 'DELETE' });
      expect(await fetch()).toBe(200);
      await req(`/v1/sources/${sourceId}`, { token: ADMIN, method: 'PATCH', body: { enabled: false } });
      expect(await fetch()).toBe(404);
      await req(`/v1/sources/${sourceId}`, { token: ADMIN, method: 'PATCH', body: { enabled: true } });
      expect(await fetch()).toBe(200);
    });

    const explain2 = async (user: string, doc: string) =>
      (await req(`/v1/access/explain?user=${encodeURIComponent(user)}&documentId=${doc}&groups=hr`, { token: tokens.carl! })).json();
  });

  describe('document fetch', () => {
    it('returns metadata and chunks in order to a reader, audited once with the document', async () => {
      let body!: { documentId: string; title: string; chunks: { index: number; text: string }[]; freshness: { status: string } };
      const recs = await produced(async () => { body = await (await req(`/v1/documents/${docs['On-call']}`, { token: tokens.erin! })).json(); });
      expect(body).toMatchObject({ documentId: docs['On-call'], title: 'On-call', sourceId, sourceType: 'filesystem', freshness: { status: 'fresh' } });
      expect(body.chunks.map((c) => c.index)).toEqual(body.chunks.map((_, i) => i));
      expect(body.chunks.map((c) => c.text).join(' ')).toContain('incident commander');
      expect(recs).toMatchObject([{ action: 'document.fetch', outcome: 'ok', actor: 'erin@acme.test', target: docs['On-call'], documents: [{ id: docs['On-call'], title: 'On-call' }] }]);
    });

    it('answers a document the caller may not read exactly like one that does not exist (and audits the refusal)', async () => {
      let hidden!: Response;
      const recs = await produced(async () => { hidden = await req(`/v1/documents/${docs.Salaries}`, { token: tokens.erin! }); });
      const missing = await req('/v1/documents/00000000-0000-4000-8000-000000000000', { token: tokens.erin! });
      expect([hidden.status, missing.status]).toEqual([404, 404]);
      const strip = (b: { instance?: string }) => ({ ...b, instance: undefined });
      expect(strip(await hidden.json())).toEqual(strip(await missing.json()));
      expect(recs).toMatchObject([{ action: 'document.fetch', outcome: 'denied', documents: [] }]);
    });

    it('limits an agent key to its sources', async () => {
      const { key } = await (await req('/v1/agents', { token: ADMIN, body: { name: 'second-only', sourceIds: [other] } })).json();
      expect((await req(`/v1/documents/${docs['On-call']}`, { token: tokens.erin!, headers: { 'x-agent-key': key } })).status).toBe(404);
      expect((await req(`/v1/documents/${docs.Handbook}`, { token: tokens.erin!, headers: { 'x-agent-key': key } })).status).toBe(200);
    });

    it('is an MCP tool under the same rule, one audit record per call', async () => {
      const call = (doc: string) => mcp(tokens.erin!, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'fetch_document', arguments: { documentId: doc } } });
      let res!: { result: { structuredContent?: { document: { title: string } }; isError?: boolean } };
      let recs = await produced(async () => { res = await (await call(docs['On-call']!)).json(); });
      expect(res.result.structuredContent?.document.title).toBe('On-call');
      expect(recs).toMatchObject([{ action: 'mcp.fetch_document', outcome: 'ok' }]);
      recs = await produced(async () => { res = await (await call(docs.Salaries!)).json(); });
      expect(res.result.isError).toBe(true);
      expect(recs).toMatchObject([{ action: 'mcp.fetch_document', outcome: 'denied' }]);
    });
  });
});

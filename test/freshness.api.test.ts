import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { freshnessIdle } from '../src/freshness/evaluate.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';
import { startWorkers } from '../src/services.ts';

const ADMIN = 'test-admin-token-0123456789';
const DAY = 86_400_000;

/**
 * The freshness monitor end to end: a filesystem source with back-dated files, synced through the
 * job runner (evaluation runs when the sync completes), read and acknowledged over HTTP.
 */
describe('freshness over HTTP', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let corpus: string;
  let sourceId: string;
  const tokens: Record<string, string> = {};
  const req = requester(() => app);
  const write = async (rel: string, text: string, ageDays: number) => {
    const file = path.join(corpus, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    const when = new Date(Date.now() - ageDays * DAY);
    await utimes(file, when, when);
  };
  const sync = async () => {
    const res = await req(`/v1/sources/${sourceId}/sync`, { token: ADMIN, body: {} });
    expect(res.status).toBe(202);
    const { runId } = await res.json();
    await h.jobs.idle();
    return (await req(`/v1/runs/${runId}`, { token: ADMIN })).json();
  };
  const openAlerts = async () => (await (await req('/v1/freshness/alerts?status=open', { token: tokens.rita })).json()).alerts as ({ id: string; title: string } & Record<string, unknown>)[];
  const titles = (alerts: { title: string }[]) => alerts.map((a) => a.title).sort();

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, COMPLIANCE_GROUP: 'compliance' } });
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    corpus = path.join(h.dir, 'corpus');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await write('policies/expenses.md', '# Expense policy\n\nExpenses over 5000 dollars need CFO approval.', 400);
    await write('runbooks/db-runbook.md', '# Database failover runbook\n\nPromote the replica during an outage.', 200);
    await write('templates/offer-template.md', '# Offer letter template\n\nDear candidate, we are pleased to offer.', 1000);
    await write('handbook.md', '# Employee handbook\n\nThe holiday calendar is published each December.', 10);
    await write('notes/formula.md', '# =SUM(1,2) "quoted", title\n\nA note whose heading looks like a spreadsheet formula.', 500);
    tokens.rita = await mintDevToken({ email: 'rita@acme.test', groups: ['compliance'], dataDir: h.config.dataDir });
    tokens.alice = await mintDevToken({ email: 'alice@acme.test', groups: ['engineering'], dataDir: h.config.dataDir });
    const res = await req('/v1/sources', {
      token: ADMIN,
      body: {
        name: 'acme', type: 'filesystem', config: { path: corpus },
        freshness: { maxAgeDays: 365, rules: [{ match: { pathGlob: '**/*template*' }, maxAgeDays: null }, { match: { pathGlob: 'runbooks/**' }, maxAgeDays: 180 }] },
      },
    });
    expect(res.status).toBe(201);
    sourceId = (await res.json()).id;
  });
  afterAll(() => h.cleanup());

  it('has alerts for the stale documents as soon as the sync completes', async () => {
    const run = await sync();
    expect(run).toMatchObject({ status: 'succeeded', stats: { added: 5 } });
    const alerts = await openAlerts();
    expect(titles(alerts)).toEqual(['=SUM(1,2) "quoted", title', 'Database failover runbook', 'Expense policy']);
    const expense = alerts.find((a) => a.title === 'Expense policy')!;
    expect(expense).toMatchObject({
      id: expect.any(String), kind: 'document', documentId: expect.any(String), sourceId, url: expect.stringMatching(/^file:\/\/.*expenses\.md$/),
      expectedMaxAgeDays: 365, ageDays: 400, status: 'open', firstFlaggedAt: expect.any(String), lastModified: expect.any(String),
    });
    expect(alerts.find((a) => a.title === 'Database failover runbook')).toMatchObject({ expectedMaxAgeDays: 180, ageDays: 200 });
  });

  it('is for the compliance role and admins only', async () => {
    expect((await req('/v1/freshness/alerts')).status).toBe(401);
    const denied = await req('/v1/freshness/alerts', { token: tokens.alice });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toContain('application/problem+json');
    expect((await req('/v1/freshness/summary', { token: tokens.alice })).status).toBe(403);
    expect((await req('/v1/freshness/alerts', { token: ADMIN })).status).toBe(200);
  });

  it('exports the same list as CSV, quoted and formula-safe', async () => {
    const res = await req('/v1/freshness/alerts?status=open', { token: tokens.rita, headers: { accept: 'text/csv' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await res.text()).split('\r\n').filter(Boolean);
    expect(lines[0]).toMatch(/^id,kind,documentId,sourceId,title,url,owner,lastModified,expectedMaxAgeDays,ageDays,status,firstFlaggedAt,/);
    expect(lines).toHaveLength(4);
    const formula = lines.find((l) => l.includes('SUM'))!;
    expect(formula).toContain(`,"'=SUM(1,2) ""quoted"", title",`);
    expect(lines.find((l) => l.includes('Expense policy'))).toMatch(/,365,400,open,/);
    // JSON stays the default, and wins when listed first.
    const json = await req('/v1/freshness/alerts', { token: tokens.rita, headers: { accept: 'application/json, text/csv' } });
    expect(json.headers.get('content-type')).toContain('application/json');
  });

  it('shows one alert with its history, acknowledges it, and 404s unknown ids', async () => {
    const expense = (await openAlerts()).find((a) => a.title === 'Expense policy')!;
    expect((await req(`/v1/freshness/alerts/${expense.id}/ack`, { token: tokens.rita, body: {} })).status).toBe(400);
    expect((await req(`/v1/freshness/alerts/${expense.id}/ack`, { token: tokens.rita, body: { note: 'x', snoozeDays: 0 } })).status).toBe(400);
    const ack = await req(`/v1/freshness/alerts/${expense.id}/ack`, { token: tokens.rita, body: { note: 'Finance is rewriting it', snoozeDays: 14 } });
    expect(ack.status).toBe(200);
    expect(await ack.json()).toMatchObject({ id: expense.id, status: 'acknowledged', acknowledgedBy: 'rita@acme.test', note: 'Finance is rewriting it', snoozedUntil: expect.any(String) });
    const detail = await (await req(`/v1/freshness/alerts/${expense.id}`, { token: tokens.rita })).json();
    expect(detail.history.map((e: { type: string; actor: string }) => [e.type, e.actor])).toEqual([['opened', 'system'], ['acknowledged', 'rita@acme.test']]);
    expect(detail.history[1]).toMatchObject({ note: 'Finance is rewriting it', details: { snoozeDays: 14 } });
    const acked = (await (await req('/v1/freshness/alerts?status=acknowledged', { token: tokens.rita })).json()).alerts;
    expect(acked.map((a: { id: string }) => a.id)).toEqual([expense.id]);

    for (const p of ['/v1/freshness/alerts/00000000-0000-4000-8000-000000000000', '/v1/freshness/alerts/not-an-id']) {
      const res = await req(p, { token: tokens.rita });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ status: 404, title: 'Not Found' });
    }
    expect((await req('/v1/freshness/alerts/00000000-0000-4000-8000-000000000000/ack', { token: tokens.rita, body: { note: 'x' } })).status).toBe(404);
  });

  it('summarises by source and status with the oldest documents first', async () => {
    const res = await req('/v1/freshness/summary', { token: tokens.rita });
    expect(res.status).toBe(200);
    const summary = await res.json();
    expect(summary.totals).toMatchObject({ open: 2, acknowledged: 1, resolved: 0 });
    const mine = summary.sources.find((s: { sourceId: string }) => s.sourceId === sourceId);
    expect(mine).toMatchObject({ name: 'acme', alerts: { documents: { open: 2, acknowledged: 1, resolved: 0 } }, lag: { lastRunStatus: 'succeeded', consecutiveFailures: 0, thresholdSeconds: null } });
    expect(summary.oldest.map((a: { title: string }) => a.title)).toEqual(['=SUM(1,2) "quoted", title', 'Expense policy', 'Database failover runbook']);
  });

  it('re-evaluates on a policy change without re-syncing', async () => {
    const runsBefore = (await (await req(`/v1/sources/${sourceId}/runs`, { token: ADMIN })).json()).runs.length;
    const res = await req(`/v1/sources/${sourceId}`, {
      method: 'PATCH', token: ADMIN,
      body: { freshness: { maxAgeDays: 365, rules: [{ match: { pathGlob: '**/*template*' }, maxAgeDays: null }, { match: { pathGlob: 'runbooks/**' }, maxAgeDays: null }, { match: { pathGlob: 'handbook.md' }, maxAgeDays: 7 }] } },
    });
    expect(res.status).toBe(200);
    await freshnessIdle();
    expect(titles(await openAlerts())).toEqual(['=SUM(1,2) "quoted", title', 'Employee handbook']);
    const resolved = (await (await req(`/v1/freshness/alerts?status=resolved&sourceId=${sourceId}`, { token: tokens.rita })).json()).alerts;
    expect(resolved).toMatchObject([{ title: 'Database failover runbook', resolution: 'policy' }]);
    expect((await (await req(`/v1/sources/${sourceId}/runs`, { token: ADMIN })).json()).runs.length).toBe(runsBefore);
    expect((await req(`/v1/sources/${sourceId}`, { method: 'PATCH', token: ADMIN, body: { freshness: { maxAgeDays: 1, webhookUrl: 'javascript:alert(1)' } } })).status).toBe(400);
  });

  it('marks stale results in search and leaves them out with freshOnly', async () => {
    const search = async (freshOnly?: boolean) => {
      const res = await req('/v1/search', { token: tokens.alice, body: { query: 'policy runbook handbook note template', topK: 50, ...(freshOnly ? { filter: { freshOnly } } : {}) } });
      expect(res.status).toBe(200);
      return (await res.json()).results as { title: string; freshness: { status: string; ageDays: number } }[];
    };
    const all = await search();
    const status = Object.fromEntries(all.map((r) => [r.title, r.freshness.status]));
    expect(status).toEqual({
      'Expense policy': 'stale', 'Employee handbook': 'stale', '=SUM(1,2) "quoted", title': 'stale',
      'Database failover runbook': 'fresh', 'Offer letter template': 'fresh',
    });
    expect(all.find((r) => r.title === 'Expense policy')!.freshness.ageDays).toBe(400);
    expect([...new Set((await search(true)).map((r) => r.title))].sort()).toEqual(['Database failover runbook', 'Offer letter template']);
  });

  it('resolves alerts when documents are updated or deleted upstream, at the next sync', async () => {
    const before = await openAlerts();
    const now = new Date();
    await utimes(path.join(corpus, 'handbook.md'), now, now);
    await rm(path.join(corpus, 'notes/formula.md'));
    await sync();
    expect(await openAlerts()).toEqual([]);
    for (const [title, resolution] of [['Employee handbook', 'updated'], ['=SUM(1,2) "quoted", title', 'deleted']]) {
      const id = before.find((a) => a.title === title)!.id;
      const detail = await (await req(`/v1/freshness/alerts/${id}`, { token: tokens.rita })).json();
      expect(detail).toMatchObject({ status: 'resolved', resolution });
      expect(detail.history.map((e: { type: string }) => e.type)).toEqual(['opened', 'resolved']);
    }
  });
});

import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { csvField, csvHeader, csvRow } from '../src/freshness/csv.ts';
import { evaluateSource, runFreshnessJob, runFreshnessTick } from '../src/freshness/evaluate.ts';
import { FRESHNESS_EVERY_MS, FRESHNESS_TICK_EVERY_MS, registerFreshnessJobs } from '../src/freshness/jobs.ts';
import { evaluateLag, FAILING_AFTER } from '../src/freshness/lag.ts';
import { backoffMs, deliverOutbox, MAX_DELIVERY_ATTEMPTS } from '../src/freshness/notify.ts';
import { maxAgeFor } from '../src/freshness/policy.ts';
import { acknowledge, alertWithHistory, listAlertPage } from '../src/freshness/service.ts';
import type { Alert } from '../src/freshness/ports.ts';
import type { JobRunner, RepeatableHandler } from '../src/jobs/interface.ts';
import type { DocumentUpsert } from '../src/metadata/interface.ts';
import type { FreshnessPolicy, Source } from '../src/types.ts';
import { createHarness, userCtx, type Harness } from './support/harness.ts';

const DAY = 86_400_000;
const T0 = new Date('2025-06-01T12:00:00Z');
const daysAgo = (n: number, from = T0) => new Date(from.getTime() - n * DAY);

let h: Harness;
let now: Date;
const advance = (ms: number) => { now = new Date(now.getTime() + ms); };

beforeAll(async () => {
  h = await createHarness({ env: { FRESHNESS_LAG_FACTOR: '3' } });
  h.now = () => now;
});
afterAll(() => h.cleanup());
beforeEach(() => { now = T0; });

let counter = 0;
async function newSource(freshness: FreshnessPolicy | null, schedule: Source['schedule'] = null): Promise<Source> {
  return h.metadata.sources.create({ name: `fresh-${++counter}-${Math.random().toString(36).slice(2, 8)}`, type: 'filesystem', config: { path: '/nowhere' }, credentialsEncrypted: null, schedule, freshness });
}

function doc(sourceId: string, externalId: string, over: Partial<DocumentUpsert> = {}): DocumentUpsert {
  return {
    sourceId, externalId, title: externalId, url: `https://docs.acme.test/${externalId}`, path: `/${externalId}`,
    mimeType: 'text/markdown', owner: null, labels: [], lastModified: daysAgo(10), contentVersion: null, contentHash: null,
    aclHash: 'x', acl: ['everyone'], generation: 1, chunkCount: 1, status: 'indexed', error: null, ...over,
  };
}

async function alertsOf(sourceId: string, status?: Alert['status']): Promise<Alert[]> {
  return (await listAlertPage({ ctx: h, input: { sourceId, status, limit: 1000 } })).alerts;
}
const byTitle = (alerts: Alert[]) => Object.fromEntries(alerts.map((a) => [a.title, a]));

describe('policy rules', () => {
  const policy: FreshnessPolicy = {
    maxAgeDays: 365,
    rules: [
      { match: { pathGlob: '**/*template*' }, maxAgeDays: null },
      { match: { pathGlob: 'runbooks/**' }, maxAgeDays: 180 },
      { match: { titleRegex: '^runbook' }, maxAgeDays: 30 },
      { match: { label: 'legal' }, maxAgeDays: 90 },
      { match: { mimeType: 'application/pdf' }, maxAgeDays: 730 },
    ],
  };
  const d = (over: Partial<{ path: string; title: string; labels: string[]; mimeType: string }>) =>
    ({ path: '/misc/a.md', title: 'A', labels: [], mimeType: 'text/markdown', lastModified: T0, ...over });

  it('takes the first matching rule, falls back to the default, and null exempts', () => {
    expect(maxAgeFor(policy, d({}))).toBe(365);
    expect(maxAgeFor(policy, d({ path: '/runbooks/db.md', title: 'Runbook: database' }))).toBe(180); // path rule comes first
    expect(maxAgeFor(policy, d({ path: '/ops/db.md', title: 'Runbook: database' }))).toBe(30);
    expect(maxAgeFor(policy, d({ path: '/runbooks/expense-template.md', title: 'Runbook template' }))).toBeNull();
    expect(maxAgeFor(policy, d({ labels: ['legal'], mimeType: 'application/pdf' }))).toBe(90);
    expect(maxAgeFor(policy, d({ mimeType: 'application/pdf' }))).toBe(730);
    expect(maxAgeFor(null, d({}))).toBeNull();
  });

  it('applies precedence and exemptions when evaluating a source', async () => {
    const s = await newSource(policy);
    await h.metadata.documents.upsert(doc(s.id, 'runbooks/db.md', { title: 'Runbook: database', lastModified: daysAgo(100) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'ops/db.md', { title: 'Runbook: network', lastModified: daysAgo(100) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'hr/offer-template.md', { title: 'Offer letter', lastModified: daysAgo(3000) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'legal/nda.pdf', { title: 'NDA', labels: ['legal'], mimeType: 'application/pdf', lastModified: daysAgo(400) }), 'r');
    const result = await evaluateSource({ ctx: h, sourceId: s.id });
    expect(result).toMatchObject({ documents: 4, stale: 2, exempt: 1, opened: 2 });
    const open = byTitle(await alertsOf(s.id, 'open'));
    expect(Object.keys(open).sort()).toEqual(['NDA', 'Runbook: network']);
    expect(open['Runbook: network']).toMatchObject({ kind: 'document', expectedMaxAgeDays: 30, ageDays: 100 });
    expect(open.NDA).toMatchObject({ expectedMaxAgeDays: 90, ageDays: 400 });
  });
});

describe('document alerts', () => {
  it('opens one alert per stale document, naming its owner, and does not repeat it', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    const stale = await h.metadata.documents.upsert(doc(s.id, 'old.md', { title: 'Old policy', owner: 'dana@acme.test', lastModified: daysAgo(45) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'new.md', { title: 'New policy', lastModified: daysAgo(5) }), 'r');
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ documents: 2, stale: 1, opened: 1 });
    advance(2 * DAY);
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ stale: 1, opened: 0, resolved: 0 });
    const [alert, ...rest] = await alertsOf(s.id);
    expect(rest).toHaveLength(0);
    expect(alert).toMatchObject({ documentId: stale.id, owner: 'dana@acme.test', status: 'open', expectedMaxAgeDays: 30, firstFlaggedAt: T0 });
    const detail = await alertWithHistory({ ctx: h, id: alert!.id });
    expect(detail).toMatchObject({ owner: 'dana@acme.test', url: 'https://docs.acme.test/old.md', lastModified: daysAgo(45).toISOString(), ageDays: 47 });
    expect(detail.history.map((e) => e.type)).toEqual(['opened']);
  });

  it('resolves when the document is updated, and opens a new alert when it goes stale again', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    await h.metadata.documents.upsert(doc(s.id, 'a.md', { title: 'A', lastModified: daysAgo(40) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const [first] = await alertsOf(s.id, 'open');
    await h.metadata.documents.upsert(doc(s.id, 'a.md', { title: 'A', lastModified: daysAgo(1) }), 'r2');
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ stale: 0, resolved: 1 });
    const resolved = await alertWithHistory({ ctx: h, id: first!.id });
    // A resolved alert keeps the age its document had reached, not the new version's.
    expect(resolved).toMatchObject({ status: 'resolved', resolution: 'updated', resolvedAt: T0.toISOString(), ageDays: 40 });
    expect(resolved.history.map((e) => e.type)).toEqual(['opened', 'resolved']);
    expect(await alertsOf(s.id, 'open')).toHaveLength(0);

    advance(40 * DAY);
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ opened: 1 });
    const all = await alertsOf(s.id);
    expect(all.map((a) => a.status).sort()).toEqual(['open', 'resolved']);
  });

  it('resolves when the document is deleted, and keeps the alert and its history', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    const d = await h.metadata.documents.upsert(doc(s.id, 'gone.md', { title: 'Gone', lastModified: daysAgo(90) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const [alert] = await alertsOf(s.id, 'open');
    await h.metadata.documents.delete(d.id); // the indexer hard-deletes rows
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ documents: 0, resolved: 1 });
    const after = await alertWithHistory({ ctx: h, id: alert!.id });
    expect(after).toMatchObject({ status: 'resolved', resolution: 'deleted', documentId: d.id, title: 'Gone' });
    expect(after.history.map((e) => [e.type, e.details?.reason ?? null])).toEqual([['opened', 'past its review date'], ['resolved', 'deleted']]);
  });

  it('resolves when a policy change makes the document fresh or exempt', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    await h.metadata.documents.upsert(doc(s.id, 'x.md', { title: 'X', lastModified: daysAgo(60) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'y.md', { title: 'Y', lastModified: daysAgo(60) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    await h.metadata.sources.update(s.id, { freshness: { maxAgeDays: 30, rules: [{ match: { pathGlob: 'x.md' }, maxAgeDays: null }] } });
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ exempt: 1, stale: 1, resolved: 1 });
    expect(byTitle(await alertsOf(s.id)).X).toMatchObject({ status: 'resolved', resolution: 'policy' });
    await h.metadata.sources.update(s.id, { freshness: null });
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ documents: 0, resolved: 1 });
    expect(await alertsOf(s.id, 'open')).toHaveLength(0);
  });

  it('pages through a source larger than one page', async () => {
    const s = await newSource({ maxAgeDays: 100 });
    for (let g = 0; g < 2500; g++) {
      await h.metadata.documents.upsert(doc(s.id, `d${g}`, { title: `Doc ${g}`, lastModified: daysAgo(g % 200) }), 'seed');
    }
    const r = await evaluateSource({ ctx: h, sourceId: s.id });
    // Ages 0..199 spread evenly; > 100 days is stale: 99 of every 200.
    expect(r).toMatchObject({ documents: 2500, stale: 1188, opened: 1188 });
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ opened: 0, resolved: 0 });
  });
});

describe('acknowledging and snoozing', () => {
  it('keeps who acknowledged what and when; a resolved alert cannot be acknowledged', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    const d = await h.metadata.documents.upsert(doc(s.id, 'ack.md', { title: 'Ack me', lastModified: daysAgo(60) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const [alert] = await alertsOf(s.id, 'open');
    const reviewer = userCtx(h, 'Rita@acme.test', ['compliance']);
    advance(3_600_000);
    const acked = await acknowledge({ ctx: reviewer, input: { id: alert!.id, note: 'Owner is rewriting it this quarter' } });
    expect(acked).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'rita@acme.test', note: 'Owner is rewriting it this quarter', snoozedUntil: null });
    // Still stale and not snoozed: stays acknowledged through evaluations.
    advance(30 * DAY);
    await runFreshnessJob({ ctx: h });
    expect((await alertWithHistory({ ctx: h, id: alert!.id })).status).toBe('acknowledged');

    await h.metadata.documents.delete(d.id);
    await evaluateSource({ ctx: h, sourceId: s.id });
    const history = (await alertWithHistory({ ctx: h, id: alert!.id })).history;
    expect(history.map((e) => [e.type, e.actor])).toEqual([['opened', 'system'], ['acknowledged', 'rita@acme.test'], ['resolved', 'system']]);
    expect(history[1]).toMatchObject({ note: 'Owner is rewriting it this quarter', at: new Date(T0.getTime() + 3_600_000).toISOString() });
    await expect(acknowledge({ ctx: reviewer, input: { id: alert!.id, note: 'late' } })).rejects.toMatchObject({ status: 409 });
    await expect(acknowledge({ ctx: reviewer, input: { id: '00000000-0000-4000-8000-000000000000', note: 'x' } })).rejects.toMatchObject({ status: 404 });
  });

  it('re-opens a snoozed alert when the snooze ends if the document is still stale', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    await h.metadata.documents.upsert(doc(s.id, 'snooze.md', { title: 'Snoozed', lastModified: daysAgo(60) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'fixed.md', { title: 'Fixed meanwhile', lastModified: daysAgo(60) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const alerts = byTitle(await alertsOf(s.id, 'open'));
    const reviewer = userCtx(h, 'rita@acme.test', ['compliance']);
    for (const a of Object.values(alerts)) await acknowledge({ ctx: reviewer, input: { id: a.id, note: 'next sprint', snoozeDays: 7 } });
    expect((await alertsOf(s.id, 'acknowledged'))[0]!.snoozedUntil).toEqual(new Date(T0.getTime() + 7 * DAY));

    advance(3 * DAY);
    await runFreshnessTick({ ctx: h });
    await evaluateSource({ ctx: h, sourceId: s.id });
    expect(await alertsOf(s.id, 'acknowledged')).toHaveLength(2);

    await h.metadata.documents.upsert(doc(s.id, 'fixed.md', { title: 'Fixed meanwhile', lastModified: daysAgo(0, now) }), 'r2');
    await evaluateSource({ ctx: h, sourceId: s.id });
    advance(5 * DAY);
    expect(await runFreshnessTick({ ctx: h })).toMatchObject({ reopened: 1 });
    const snoozed = await alertWithHistory({ ctx: h, id: alerts.Snoozed!.id });
    expect(snoozed).toMatchObject({ status: 'open', snoozedUntil: null, acknowledgedBy: 'rita@acme.test' });
    expect(snoozed.history.map((e) => e.type)).toEqual(['opened', 'acknowledged', 'reopened']);
    expect(await alertWithHistory({ ctx: h, id: alerts['Fixed meanwhile']!.id })).toMatchObject({ status: 'resolved', resolution: 'updated' });
    // A later pass does not re-open it again.
    expect(await runFreshnessTick({ ctx: h })).toMatchObject({ reopened: 0 });
  });

  it('re-opens during a document evaluation too, not only in the tick', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    await h.metadata.documents.upsert(doc(s.id, 'e.md', { title: 'E', lastModified: daysAgo(60) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const [a] = await alertsOf(s.id, 'open');
    await acknowledge({ ctx: userCtx(h, 'rita@acme.test'), input: { id: a!.id, note: 'later', snoozeDays: 1 } });
    advance(DAY + 1);
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ reopened: 1 });
  });
});

describe('index lag and failing syncs', () => {
  async function finishedRun(sourceId: string, status: 'succeeded' | 'failed', startedAt: Date, error: string | null = null) {
    const run = (await h.metadata.runs.start(sourceId, 'incremental')).run;
    await h.metadata.runs.update(run.id, { status, startedAt, finishedAt: new Date(startedAt.getTime() + 60_000), error });
    // created_at is the database's clock; space runs so their order is unambiguous.
    await new Promise((r) => setTimeout(r, 5));
  }

  it('opens an index_lag alert past schedule × FRESHNESS_LAG_FACTOR and resolves it after a successful sync', async () => {
    const s = await newSource(null, { intervalSeconds: 3600 });
    await finishedRun(s.id, 'succeeded', new Date(T0.getTime() - 2 * 3_600_000));
    await evaluateLag({ ctx: h, sourceId: s.id });
    expect(await alertsOf(s.id)).toHaveLength(0);

    advance(1.5 * 3_600_000); // 3.5 h since the last successful sync started; threshold is 3 h
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ opened: 1 });
    const [lag] = await alertsOf(s.id, 'open');
    expect(lag).toMatchObject({ kind: 'index_lag', documentId: null, sourceId: s.id, title: expect.stringContaining(s.name) });
    expect(lag!.details).toMatchObject({ lagSeconds: 3.5 * 3600, thresholdSeconds: 3 * 3600 });
    const api = await alertWithHistory({ ctx: h, id: lag!.id });
    expect(api).toMatchObject({ kind: 'index_lag', documentId: null, lastModified: new Date(T0.getTime() - 2 * 3_600_000).toISOString(), status: 'open' });

    await finishedRun(s.id, 'succeeded', now);
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ resolved: 1 });
    expect(await alertWithHistory({ ctx: h, id: lag!.id })).toMatchObject({ status: 'resolved', resolution: 'caught up' });
  });

  it('raises sync_failing after consecutive failed runs, and a pause or a success resolves it', async () => {
    const s = await newSource(null, { intervalSeconds: 86_400 });
    await finishedRun(s.id, 'succeeded', daysAgo(0.5));
    for (let i = 0; i < FAILING_AFTER - 1; i++) await finishedRun(s.id, 'failed', T0, 'HTTP 401 from Graph');
    await evaluateLag({ ctx: h, sourceId: s.id });
    expect(await alertsOf(s.id)).toHaveLength(0);
    await finishedRun(s.id, 'failed', T0, 'HTTP 401 from Graph');
    (await h.metadata.runs.start(s.id, 'incremental')).run; // a queued retry does not hide the failures
    await evaluateLag({ ctx: h, sourceId: s.id });
    const [failing] = await alertsOf(s.id, 'open');
    expect(failing).toMatchObject({ kind: 'sync_failing', details: { consecutiveFailures: FAILING_AFTER, lastError: 'HTTP 401 from Graph' } });

    await h.metadata.sources.update(s.id, { status: 'paused' });
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ resolved: 1 });
    expect(await alertWithHistory({ ctx: h, id: failing!.id })).toMatchObject({ resolution: 'source paused' });
    await h.metadata.sources.update(s.id, { status: 'active' });
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ opened: 1 });
    const active = await h.metadata.runs.active(s.id);
    await h.metadata.runs.update(active!.id, { status: 'succeeded', startedAt: T0, finishedAt: T0 });
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ resolved: 1 });
  });

  it('has no lag expectation without a schedule', async () => {
    const s = await newSource(null, null);
    advance(400 * DAY);
    expect(await evaluateLag({ ctx: h, sourceId: s.id })).toMatchObject({ opened: 0 });
  });
});

describe('webhook notifications', () => {
  let server: http.Server;
  let url: string;
  /** Each request: status returned, and the event ids it carried. */
  const requests: { status: number; eventIds: string[]; body: Record<string, unknown>; headers: http.IncomingHttpHeaders }[] = [];
  let script: { status: number; headers?: Record<string, string> }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => { raw += c; });
      req.on('end', () => {
        const body = JSON.parse(raw);
        const step = script.shift() ?? { status: 200 };
        requests.push({ status: step.status, eventIds: body.events.map((e: { id: string }) => e.id), body, headers: req.headers });
        res.writeHead(step.status, step.headers ?? {}).end(step.status < 300 ? 'ok' : 'nope');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  afterEach(() => { requests.length = 0; script = []; });

  /** Every event id that reached the receiver in a request it accepted, with how often. */
  const deliveredCounts = () => {
    const counts = new Map<string, number>();
    for (const r of requests) if (r.status < 300) for (const id of r.eventIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  };

  it('retries with backoff after a failure and delivers each state change exactly once', async () => {
    const s = await newSource({ maxAgeDays: 30, webhookUrl: url } as FreshnessPolicy);
    await h.metadata.documents.upsert(doc(s.id, 'one.md', { title: 'Expense <policy> & rules', owner: 'dana@acme.test', lastModified: daysAgo(400) }), 'r');
    await h.metadata.documents.upsert(doc(s.id, 'two.md', { title: 'Travel', lastModified: daysAgo(50) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });

    script = [{ status: 503 }];
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 0, failed: 2 });
    expect(requests).toHaveLength(1);
    // Not due yet: nothing is sent again at the same moment.
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 0, failed: 0 });
    expect(requests).toHaveLength(1);
    advance(backoffMs(1) - 1000);
    await deliverOutbox({ ctx: h });
    expect(requests).toHaveLength(1);
    advance(1000);
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 2 });
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 0 });
    expect(requests.map((r) => r.status)).toEqual([503, 200]);
    const ok = requests[1]!;
    expect(ok.eventIds).toEqual(requests[0]!.eventIds); // the same events, retried
    expect(ok.headers['idempotency-key']).toBe(requests[0]!.headers['idempotency-key']);
    expect(typeof ok.body.text).toBe('string');
    expect(ok.body.text).toContain('Expense &lt;policy&gt; &amp; rules');
    expect(ok.body.text).toContain('owner dana@acme.test');
    expect(ok.body).toMatchObject({ source: { id: s.id, name: s.name } });
    expect((ok.body.events as { type: string; alert: { kind: string } }[]).map((e) => [e.type, e.alert.kind])).toEqual([['opened', 'document'], ['opened', 'document']]);

    // Acknowledge one, resolve the other: two more state changes, two more deliveries.
    const alerts = byTitle(await alertsOf(s.id));
    await acknowledge({ ctx: userCtx(h, 'rita@acme.test'), input: { id: alerts.Travel!.id, note: 'ok' } });
    await h.metadata.documents.upsert(doc(s.id, 'one.md', { title: 'Expense <policy> & rules', lastModified: now }), 'r2');
    await evaluateSource({ ctx: h, sourceId: s.id });
    await evaluateSource({ ctx: h, sourceId: s.id });
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 2 });
    await deliverOutbox({ ctx: h });
    const types = (requests[2]!.body.events as { type: string }[]).map((e) => e.type);
    expect(types.sort()).toEqual(['acknowledged', 'resolved']);

    const counts = deliveredCounts();
    expect(counts.size).toBe(4);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    // Each history event carries exactly one delivered marker.
    for (const id of counts.keys()) expect((await h.alerts.outboxState(id))?.deliveredAt).toBeInstanceOf(Date);
  });

  it('honours Retry-After', async () => {
    const s = await newSource({ maxAgeDays: 30, webhookUrl: url } as FreshnessPolicy);
    await h.metadata.documents.upsert(doc(s.id, 'r.md', { title: 'R', lastModified: daysAgo(40) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    script = [{ status: 429, headers: { 'retry-after': '600' } }];
    await deliverOutbox({ ctx: h });
    advance(backoffMs(1) + 1000); // past the ordinary backoff, still inside Retry-After
    await deliverOutbox({ ctx: h });
    expect(requests).toHaveLength(1);
    advance(600_000);
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ delivered: 1 });
    expect([...deliveredCounts().values()]).toEqual([1]);
  });

  it('gives up after bounded attempts, and at once on a client error', async () => {
    const s = await newSource({ maxAgeDays: 30, webhookUrl: url } as FreshnessPolicy);
    await h.metadata.documents.upsert(doc(s.id, 'f.md', { title: 'F', lastModified: daysAgo(40) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    script = Array.from({ length: MAX_DELIVERY_ATTEMPTS + 2 }, () => ({ status: 500 }));
    for (let i = 0; i < MAX_DELIVERY_ATTEMPTS + 2; i++) {
      await deliverOutbox({ ctx: h });
      advance(2 * 3_600_000);
    }
    expect(requests).toHaveLength(MAX_DELIVERY_ATTEMPTS);
    const eventId = requests[0]!.eventIds[0]!;
    expect(await h.alerts.outboxState(eventId)).toMatchObject({ attempts: MAX_DELIVERY_ATTEMPTS, deliveredAt: null, gaveUpAt: expect.any(Date), lastError: 'HTTP 500' });

    requests.length = 0;
    const [a] = await alertsOf(s.id, 'open');
    await acknowledge({ ctx: userCtx(h, 'rita@acme.test'), input: { id: a!.id, note: 'x' } });
    script = [{ status: 404 }];
    expect(await deliverOutbox({ ctx: h })).toMatchObject({ gaveUp: 1 });
    advance(DAY);
    await deliverOutbox({ ctx: h });
    expect(requests).toHaveLength(1);
  });

  it('times out a webhook that does not answer', async () => {
    const hang = http.createServer(() => { /* never answers */ });
    hang.listen(0, '127.0.0.1');
    await once(hang, 'listening');
    try {
      const s = await newSource({ maxAgeDays: 30, webhookUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}/` } as FreshnessPolicy);
      await h.metadata.documents.upsert(doc(s.id, 't.md', { title: 'T', lastModified: daysAgo(40) }), 'r');
      await evaluateSource({ ctx: h, sourceId: s.id });
      const started = Date.now();
      expect(await deliverOutbox({ ctx: h, timeoutMs: 300 })).toMatchObject({ failed: 1 });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      hang.closeAllConnections();
      hang.close();
    }
  });

  it('does not queue notifications for sources without a webhook', async () => {
    const s = await newSource({ maxAgeDays: 30 });
    await h.metadata.documents.upsert(doc(s.id, 'n.md', { title: 'N', lastModified: daysAgo(40) }), 'r');
    await evaluateSource({ ctx: h, sourceId: s.id });
    const [alert] = await alertsOf(s.id, 'open');
    const history = await h.alerts.history(alert!.id);
    expect(history.map((e) => e.type)).toEqual(['opened']);
    for (const e of history) expect(await h.alerts.outboxState(e.id)).toBeNull();
  });
});

describe('jobs', () => {
  it('registers an hourly evaluation and a per-minute tick whose handlers do the work', async () => {
    const registered = new Map<string, { everyMs: number; handler: RepeatableHandler }>();
    const runner = { registerRepeatable: async (name: string, everyMs: number, handler: RepeatableHandler) => { registered.set(name, { everyMs, handler }); } } as unknown as JobRunner;
    await registerFreshnessJobs(runner, h);
    expect(registered.get('freshness')?.everyMs).toBe(FRESHNESS_EVERY_MS);
    expect(FRESHNESS_EVERY_MS).toBeLessThanOrEqual(3_600_000);
    expect(registered.get('freshness-tick')?.everyMs).toBe(FRESHNESS_TICK_EVERY_MS);

    const s = await newSource({ maxAgeDays: 30 }, { intervalSeconds: 600 });
    await h.metadata.documents.upsert(doc(s.id, 'job.md', { title: 'Job', lastModified: daysAgo(31) }), 'r');
    await registered.get('freshness')!.handler();
    // Never synced, 30 min > 3 × 10 min since it was added (the database's clock, so measure from there).
    now = new Date(Date.now() + 31 * 60_000);
    await registered.get('freshness-tick')!.handler();
    expect((await alertsOf(s.id, 'open')).map((a) => a.kind).sort()).toEqual(['document', 'index_lag']);
  });
});

describe('CSV', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('=HYPERLINK("http://evil","x")')).toBe(`"'=HYPERLINK(""http://evil"",""x"")"`);
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('-cmd')).toBe("'-cmd");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('\t=1')).toBe("'\t=1");
    expect(csvField(-3)).toBe('-3');
    expect(csvField(null)).toBe('');
    expect(csvRow(['a', 1, null])).toBe('a,1,\r\n');
    expect(csvHeader().startsWith('id,kind,documentId,sourceId,title,url,owner,lastModified,expectedMaxAgeDays,ageDays,status,firstFlaggedAt')).toBe(true);
  });
});

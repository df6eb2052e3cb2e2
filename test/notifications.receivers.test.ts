import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { encryptJson } from '../src/metadata/secrets.ts';
import { hashSecret } from '../src/notifications/intake.ts';
import { registry } from '../src/metrics.ts';
import type { Source } from '../src/types.ts';
import { createHarness, type Harness } from './support/harness.ts';

const ADMIN = 'notify-receivers-admin-token-01';
const BASE = 'https://clearance.example.test';

/**
 * The receivers at /v1/notifications/* through the app: Graph's validation handshake, change and
 * lifecycle notifications with clientState, Drive channel messages with their token, Confluence
 * webhooks with an HMAC signature or a shared-secret header — forged ones rejected and counted,
 * valid ones turned into (debounced) incremental syncs. No worker runs here: a requested sync
 * stays a queued run, which is what these tests count.
 */
describe('change-notification receivers', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let sp: Source, drive: Source, conf: Source, conf2: Source;
  const graphSecret = 'graph-client-state-secret-value';
  const driveToken = 'drive-channel-token-secret-value';
  const confSecret = 'confluence-webhook-secret-0001';
  const graphSubId = randomUUID();
  const channelId = randomUUID();

  const post = (p: string, init: { body?: string; headers?: Record<string, string> } = {}) =>
    app.request(p, { method: 'POST', headers: { 'content-type': 'application/json', ...init.headers }, body: init.body ?? '' });
  const runs = async (s: Source) => h.metadata.runs.list(s.id);
  const admin = async (p: string) => (await app.request(p, { headers: { authorization: `Bearer ${ADMIN}` } })).json();

  beforeAll(async () => {
    h = await createHarness({ env: { ADMIN_TOKEN: ADMIN, PUBLIC_BASE_URL: BASE, NOTIFICATION_DEBOUNCE_MS: '60000' } });
    app = createApp(h, createAuthenticator(h.config));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'notify-recv-'));
    const mk = (name: string, type: Source['type'], config: Record<string, unknown>, creds: Record<string, unknown> | null = null) =>
      h.metadata.sources.create({ name, type, config: { path: dir, ...config }, credentialsEncrypted: creds ? encryptJson(h.secretKey, creds) : null, schedule: null, freshness: null });
    sp = await mk('sp', 'sharepoint', {});
    drive = await mk('drive', 'google_drive', {});
    conf = await mk('conf', 'confluence', { spaceKeys: ['ENG'] }, { email: 'a@b.c', apiToken: 'x', webhookSecret: confSecret });
    conf2 = await mk('conf2', 'confluence', { spaceKeys: ['HR'] }, { email: 'a@b.c', apiToken: 'x', webhookSecret: 'another-confluence-secret-02' });
    const sub = (source: Source, kind: string, externalId: string, secret: string, data: Record<string, unknown> = {}) =>
      h.metadata.notifications.saveSubscription({
        id: randomUUID(), sourceId: source.id, kind, resource: `r-${externalId}`, externalId, secretHash: hashSecret(secret),
        address: `${BASE}/v1/notifications/x`, expiresAt: new Date(Date.now() + 3600_000), status: 'active', data, lastError: null,
      });
    await sub(sp, 'graph', graphSubId, graphSecret);
    await sub(drive, 'drive', channelId, driveToken, { resourceId: 'res-1' });
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  describe('Microsoft Graph (sharepoint)', () => {
    it('echoes the validation token as text/plain with 200, without looking anything up', async () => {
      const res = await post('/v1/notifications/sharepoint?validationToken=Validation%3A%20Testing%20client%20application%20reachability', { headers: { 'content-type': 'text/plain' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toBe('Validation: Testing client application reachability');
    });

    it('rejects a notification with a wrong clientState or an unknown subscription, and counts it', async () => {
      const forged = await post('/v1/notifications/sharepoint', { body: JSON.stringify({ value: [{ subscriptionId: graphSubId, clientState: 'guess', changeType: 'updated', resource: 'drives/x/root' }] }) });
      expect(forged.status).toBe(403);
      expect(forged.headers.get('content-type')).toMatch(/problem\+json/);
      const unknown = await post('/v1/notifications/sharepoint', { body: JSON.stringify({ value: [{ subscriptionId: randomUUID(), clientState: graphSecret, changeType: 'updated' }] }) });
      expect(unknown.status).toBe(403);
      const garbage = await post('/v1/notifications/sharepoint', { body: '{"value": 3}' });
      expect(garbage.status).toBe(400);
      expect(await runs(sp)).toHaveLength(0);
    });

    it('accepts a change notification with its clientState: one incremental sync is requested', async () => {
      const res = await post('/v1/notifications/sharepoint', { body: JSON.stringify({ value: [{ subscriptionId: graphSubId, clientState: graphSecret, changeType: 'updated', resource: 'drives/x/root', tenantId: 't' }] }) });
      expect(res.status).toBe(202);
      const list = await vi_waitFor(async () => ((await runs(sp)).length ? runs(sp) : null));
      expect(list).toHaveLength(1);
      expect(list[0]!.status).toBe('queued');
      expect(list[0]!.notifiedAt).toBeInstanceOf(Date);
    });
  });

  describe('Google Drive channels', () => {
    const headers = (over: Record<string, string> = {}) => ({
      'x-goog-channel-id': channelId, 'x-goog-channel-token': driveToken, 'x-goog-resource-id': 'res-1',
      'x-goog-resource-uri': 'https://www.googleapis.com/drive/v3/changes', 'x-goog-message-number': '1', ...over,
    });

    it('acknowledges the initial sync message without syncing', async () => {
      const res = await post('/v1/notifications/google_drive', { headers: headers({ 'x-goog-resource-state': 'sync' }) });
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
      expect(await runs(drive)).toHaveLength(0);
    });

    it('rejects a wrong token, an unknown channel and a foreign resource id', async () => {
      for (const over of [{ 'x-goog-channel-token': 'nope' } as Record<string, string>, { 'x-goog-channel-id': randomUUID() }, { 'x-goog-resource-id': 'other' }, { 'x-goog-resource-state': 'bogus' }]) {
        const res = await post('/v1/notifications/google_drive', { headers: headers({ 'x-goog-resource-state': 'change', ...over }) });
        expect(res.status).toBe(403);
      }
      expect(await runs(drive)).toHaveLength(0);
    });

    it('turns a change message into a sync request', async () => {
      const res = await post('/v1/notifications/google_drive', { headers: headers({ 'x-goog-resource-state': 'change', 'x-goog-message-number': '2' }) });
      expect(res.status).toBe(200);
      expect(await vi_waitFor(async () => ((await runs(drive)).length === 1 ? true : null))).toBe(true);
    });
  });

  describe('Confluence webhooks', () => {
    const event = (space: string) => JSON.stringify({ event: 'page_updated', timestamp: Date.now(), page: { id: 42, spaceKey: space, title: 'Pricing' } });
    const sign = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

    it('rejects a wrong signature, a missing one and a wrong shared secret', async () => {
      const body = event('ENG');
      for (const headers of [{ 'x-hub-signature': sign(body, 'not-the-secret-at-all') } as Record<string, string>, {}, { 'x-clearance-webhook-secret': 'not-the-secret-at-all' }]) {
        expect((await post(`/v1/notifications/confluence?source=${conf.id}`, { body, headers })).status).toBe(403);
      }
      // Another source's valid signature does not open this one.
      expect((await post(`/v1/notifications/confluence?source=${conf.id}`, { body, headers: { 'x-hub-signature': sign(body, 'another-confluence-secret-02') } })).status).toBe(403);
      expect(await runs(conf)).toHaveLength(0);
    });

    it('accepts an HMAC-signed event and finds its source by the signature alone', async () => {
      const body = event('ENG');
      const res = await post('/v1/notifications/confluence', { body, headers: { 'x-hub-signature': sign(body, confSecret) } });
      expect(res.status).toBe(202);
      expect(await vi_waitFor(async () => ((await runs(conf)).length === 1 ? true : null))).toBe(true);
      expect(await runs(conf2)).toHaveLength(0);
    });

    it('accepts the shared secret as a header (Automation rules), and ignores events of spaces the source does not index', async () => {
      const res = await post(`/v1/notifications/confluence?source=${conf2.id}`, { body: event('ENG'), headers: { 'x-clearance-webhook-secret': 'another-confluence-secret-02' } });
      expect(res.status).toBe(200);
      expect((await res.json()).ignored).toMatch(/ENG/);
      expect(await runs(conf2)).toHaveLength(0);
      const ok = await post(`/v1/notifications/confluence?source=${conf2.id}`, { body: event('HR'), headers: { 'x-clearance-webhook-secret': 'another-confluence-secret-02' } });
      expect(ok.status).toBe(202);
      expect(await vi_waitFor(async () => ((await runs(conf2)).length === 1 ? true : null))).toBe(true);
    });
  });

  it('1,000 valid notifications at once for one source leave at most one pending sync', async () => {
    const body = JSON.stringify({ value: [{ subscriptionId: graphSubId, clientState: graphSecret, changeType: 'updated' }] });
    const answers = await Promise.all(Array.from({ length: 1000 }, () => post('/v1/notifications/sharepoint', { body })));
    expect(answers.every((r) => r.status === 202)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await runs(sp)).toHaveLength(1);
  });

  it('shows counts and subscriptions in GET /v1/sources/:id and in /metrics', async () => {
    await new Promise((r) => setTimeout(r, 1_200)); // counts are written once a second
    const body = await admin(`/v1/sources/${sp.id}`);
    expect(body.notifications).toMatchObject({ enabled: true, mode: 'push', address: `${BASE}/v1/notifications/sharepoint` });
    expect(body.notifications.accepted).toBeGreaterThanOrEqual(1001);
    expect(body.notifications.rejected).toBeGreaterThanOrEqual(1);
    expect(body.notifications.subscriptions).toEqual([expect.objectContaining({ kind: 'graph', status: 'active' })]);
    expect(JSON.stringify(body)).not.toContain(graphSecret);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(new RegExp(`clearance_notifications_total\\{source_id="${sp.id}",source_type="sharepoint",outcome="rejected"\\} \\d+`));
    expect(metrics).toMatch(new RegExp(`clearance_notification_subscription_expiry_timestamp_seconds\\{source_id="${drive.id}",kind="drive",resource="r-${channelId}"\\} \\d+`));
  });

  it('does not exist without PUBLIC_BASE_URL', async () => {
    const off = await createHarness({ env: { ADMIN_TOKEN: ADMIN } });
    try {
      const offApp = createApp(off, createAuthenticator(off.config));
      const res = await offApp.request('/v1/notifications/sharepoint?validationToken=abc', { method: 'POST' });
      expect(res.status).toBe(401);
    } finally {
      await off.cleanup();
    }
  });
});

async function vi_waitFor<T>(fn: () => Promise<T | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

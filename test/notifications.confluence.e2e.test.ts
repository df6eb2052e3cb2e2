import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confluenceExternalId } from '../src/connectors/confluence/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { startFakeConfluence, type FakeConfluence, type FakeContent, type FakeUser } from './fakes/confluence/index.ts';
import { msUntil, postMany, startNotifyWorld, waitUntil, type NotifyWorld } from './support/notify-world.ts';

const SECRET = 'confluence-e2e-webhook-secret-0123';

/**
 * Confluence webhooks end to end, with no schedule ticking: the admin points a signed webhook
 * (Data Center style, X-Hub-Signature) and an Automation rule (shared-secret header) at the
 * receiver; the fake site posts an event after each change; the service syncs (debounced).
 */
describe('Confluence notifications end to end', () => {
  let site: FakeConfluence;
  let w: NotifyWorld;
  let alice: FakeUser, bob: FakeUser;
  let prices: FakeContent, memo: FakeContent;
  let sourceId: string;
  const docId = (c: FakeContent) => documentIdFor(sourceId, confluenceExternalId('page', c.id));

  beforeAll(async () => {
    site = await startFakeConfluence({ pageSize: 25 });
    alice = site.addUser('alice@acme.test');
    bob = site.addUser('bob@acme.test');
    site.addSpace('SALES', { view: [{ user: alice.accountId }, { user: bob.accountId }] });
    prices = site.addPage('SALES', 'Price list', '<p>Acme price list: the gizmo costs 90 francs.</p>');
    memo = site.addPage('SALES', 'Memo', '<p>Acme memo about the gizmo launch.</p>');
    w = await startNotifyWorld({ notifications: true });
    const { config, credentials } = site.sourceConfig(['SALES']);
    const created = await w.admin('/v1/sources', { name: 'wiki', type: 'confluence', config, credentials: { ...credentials, webhookSecret: SECRET } });
    expect(created.status).toBe(201);
    sourceId = created.body.id;
    const status = (await w.admin(`/v1/sources/${sourceId}`)).body.notifications;
    expect(status).toMatchObject({ enabled: true, mode: 'push', address: `${w.baseUrl}/v1/notifications/confluence?source=${sourceId}` });
    expect(JSON.stringify(status)).not.toContain(SECRET);
    site.webhooks.register({ url: status.address, secret: SECRET, signing: 'hmac' });
    expect((await w.syncAndWait(sourceId, 'full')).status).toBe('succeeded');
  }, 120_000);
  afterAll(async () => {
    await w?.close();
    await site?.close();
  });

  it('a read restriction disappears from search within 10 s', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    expect(await w.visible(bob.email, 'gizmo')).toContain(docId(prices));
    site.setReadRestriction(prices, { users: [alice] });
    await msUntil(async () => !(await w.visible(bob.email, 'gizmo')).includes(docId(prices)), 10_000, 'the restriction to reach search');
    expect(await w.visible(alice.email, 'gizmo')).toContain(docId(prices));
    expect(site.webhooks.deliveries.some((d) => d.event === 'content_restrictions_updated' && d.status === 202)).toBe(true);
  });

  it('a content edit is searchable within 10 s (an Automation rule sending the secret as a header)', async () => {
    site.webhooks.webhooks[0]!.active = false;
    site.webhooks.register({ url: `${w.baseUrl}/v1/notifications/confluence`, secret: SECRET, signing: 'header', events: ['page_updated'] });
    site.editBody(memo, '<p>Acme memo: the gizmo launch moves to June with a coupon.</p>');
    await msUntil(async () => (await w.texts(alice.email, 'coupon')).some((t) => t.includes('coupon')), 10_000, 'the edit to reach search');
    site.webhooks.webhooks[0]!.active = true;
    site.webhooks.webhooks[1]!.active = false;
  });

  it('rejects forged events (wrong signature, wrong secret) and syncs nothing for them', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    const before = (await w.h.metadata.runs.list(sourceId)).length;
    const body = JSON.stringify({ event: 'page_updated', page: { id: 1, spaceKey: 'SALES' } });
    for (const headers of [
      { 'x-hub-signature': `sha256=${createHmac('sha256', 'a-guessed-secret-value').update(body).digest('hex')}` } as Record<string, string>,
      { 'x-clearance-webhook-secret': 'a-guessed-secret-value' },
    ]) {
      const res = await fetch(`${w.baseUrl}/v1/notifications/confluence?source=${sourceId}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(res.status).toBe(403);
    }
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await w.h.metadata.runs.list(sourceId)).toHaveLength(before);
    expect((await w.admin(`/v1/sources/${sourceId}`)).body.notifications.rejected).toBeGreaterThanOrEqual(0);
  });

  it('1,000 valid events in a burst cause at most two syncs per debounce window they span', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    const before = (await w.h.metadata.runs.list(sourceId)).length;
    const body = JSON.stringify({ event: 'page_updated', page: { id: Number(memo.id), spaceKey: 'SALES' } });
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const started = Date.now();
    const answers = await postMany(`${w.baseUrl}/v1/notifications/confluence?source=${sourceId}`, 1000, () => ({ headers: { 'content-type': 'application/json', 'x-hub-signature': signature }, body }));
    const deliveryMs = Date.now() - started;
    expect(answers.filter((s) => s === 202)).toHaveLength(1000);
    await new Promise((r) => setTimeout(r, 3_000));
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 30_000, 'quiet');
    const syncs = (await w.h.metadata.runs.list(sourceId)).length - before;
    console.log(`1,000 Confluence events over HTTP in ${deliveryMs} ms caused ${syncs} sync(s)`);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(2 + Math.max(0, Math.ceil((deliveryMs - 1000) / 1000)));
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driveExternalId } from '../src/connectors/google-drive/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { subscriptionManager } from '../src/notifications/lifecycle.ts';
import { DIRECTORY_SCOPE, DRIVE_SCOPE, startFakeGoogle, type FakeFile, type FakeGoogle } from './fakes/google/index.ts';
import { msUntil, postMany, startNotifyWorld, waitUntil, type NotifyWorld } from './support/notify-world.ts';

const DOMAIN = 'acme.test';
const u = (name: string) => `${name}@${DOMAIN}`;

/**
 * Google Drive change notifications end to end, with no schedule ticking: creating the source
 * opens a `changes.watch` channel on its shared drive; the fake Drive sends the `sync` message and
 * a `change` message after each change; the service syncs (debounced). Revocations and edits show
 * within 10 s; forged messages are refused; renewal opens a new channel and stops the old one.
 */
describe('Google Drive notifications end to end', () => {
  let g: FakeGoogle;
  let w: NotifyWorld;
  let sourceId: string;
  let prices: FakeFile, memo: FakeFile;
  const docId = (f: FakeFile) => documentIdFor(sourceId, driveExternalId(f.id));

  beforeAll(async () => {
    g = await startFakeGoogle({ domain: DOMAIN, pageSize: 50 });
    for (const name of ['alice', 'bob']) g.addUser(u(name));
    g.addUser(u('admin'), { admin: true });
    const key = g.createServiceAccount('clearance-sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
    const sales = g.addSharedDrive('Sales', [{ type: 'user', emailAddress: u('admin'), role: 'organizer' }, { type: 'user', emailAddress: u('alice'), role: 'reader' }]);
    prices = g.addFile(sales.id, 'pricelist.txt', 'Acme price list: the gadget costs 70 dollars.', { permissions: [{ type: 'user', emailAddress: u('bob'), role: 'reader' }] });
    memo = g.addFile(sales.id, 'memo.txt', 'Acme memo about the gadget launch.');
    w = await startNotifyWorld({ notifications: true });
    const { config, credentials } = g.sourceConfig(key, { driveIds: [sales.id] });
    const created = await w.admin('/v1/sources', { name: 'sales-drive', type: 'google_drive', config, credentials });
    expect(created.status).toBe(201);
    sourceId = created.body.id;
    expect((await w.syncAndWait(sourceId, 'full')).status).toBe('succeeded');
  }, 120_000);
  afterAll(async () => {
    await w?.close();
    await g?.close();
  });

  it('opens one channel for the shared drive; its sync message is acknowledged and starts nothing', async () => {
    const live = g.notifications.live();
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ address: `${w.baseUrl}/v1/notifications/google_drive`, user: u('admin') });
    await waitUntil(async () => g.notifications.deliveries.find((d) => d.state === 'sync'), 5_000, 'the sync message');
    expect(g.notifications.deliveries.find((d) => d.state === 'sync')!.status).toBe(200);
    const status = (await w.admin(`/v1/sources/${sourceId}`)).body.notifications;
    expect(status.subscriptions).toEqual([expect.objectContaining({ kind: 'drive', status: 'active' })]);
  });

  it('a permission revocation disappears from search within 10 s', async () => {
    expect(await w.visible(u('bob'), 'gadget')).toContain(docId(prices));
    g.removePermission(prices.id, (p) => p.emailAddress === u('bob'));
    await msUntil(async () => !(await w.visible(u('bob'), 'gadget')).includes(docId(prices)), 10_000, 'the revocation to reach search');
    expect(await w.visible(u('alice'), 'gadget')).toContain(docId(prices));
  });

  it('a content edit is searchable within 10 s', async () => {
    g.updateContent(memo.id, 'Acme memo: the gadget launch moves to May with a voucher.');
    await msUntil(async () => (await w.texts(u('alice'), 'voucher')).some((t) => t.includes('voucher')), 10_000, 'the edit to reach search');
  });

  it('rejects forged messages (wrong token, unknown channel) and syncs nothing for them', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    const before = (await w.h.metadata.runs.list(sourceId)).length;
    const ch = g.notifications.live()[0]!;
    for (const headers of [
      { 'x-goog-channel-id': ch.id, 'x-goog-channel-token': 'forged', 'x-goog-resource-id': ch.resourceId, 'x-goog-resource-state': 'change' },
      { 'x-goog-channel-id': 'made-up', 'x-goog-channel-token': ch.token!, 'x-goog-resource-id': ch.resourceId, 'x-goog-resource-state': 'change' },
    ]) {
      expect((await fetch(`${w.baseUrl}/v1/notifications/google_drive`, { method: 'POST', headers })).status).toBe(403);
    }
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await w.h.metadata.runs.list(sourceId)).toHaveLength(before);
  });

  it('1,000 valid messages in a burst cause at most two syncs per debounce window they span', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    const before = (await w.h.metadata.runs.list(sourceId)).length;
    const ch = g.notifications.live()[0]!;
    const started = Date.now();
    const answers = await postMany(`${w.baseUrl}/v1/notifications/google_drive`, 1000, () => ({
      headers: { 'x-goog-channel-id': ch.id, 'x-goog-channel-token': ch.token!, 'x-goog-resource-id': ch.resourceId, 'x-goog-resource-state': 'change' },
    }));
    const deliveryMs = Date.now() - started;
    expect(answers.filter((s) => s === 200)).toHaveLength(1000);
    await new Promise((r) => setTimeout(r, 3_000));
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 30_000, 'quiet');
    const syncs = (await w.h.metadata.runs.list(sourceId)).length - before;
    console.log(`1,000 Drive messages over HTTP in ${deliveryMs} ms caused ${syncs} sync(s)`);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(2 + Math.max(0, Math.ceil((deliveryMs - 1000) / 1000)));
  });

  it('renewal opens a new channel and stops the old one; an expired channel is replaced and followed by a sync', async () => {
    const manager = subscriptionManager(w.h);
    const [row] = await w.h.metadata.notifications.subscriptions(sourceId);
    await w.h.metadata.notifications.updateSubscription(row!.id, { expiresAt: new Date(Date.now() + 60_000), renewedAt: new Date(Date.now() - 3_600_000) });
    await manager.maintainAll();
    const [renewed] = await w.h.metadata.notifications.subscriptions(sourceId);
    expect(renewed!.externalId).not.toBe(row!.externalId);
    expect(g.notifications.live().map((c) => c.id)).toEqual([renewed!.externalId]);

    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 20_000, 'quiet');
    const runsBefore = (await w.h.metadata.runs.list(sourceId)).length;
    g.notifications.expire(renewed!.externalId);
    await w.h.metadata.notifications.updateSubscription(renewed!.id, { expiresAt: new Date(Date.now() - 1000) });
    await manager.maintainAll();
    const [again] = await w.h.metadata.notifications.subscriptions(sourceId);
    expect(again!.externalId).not.toBe(renewed!.externalId);
    await waitUntil(async () => (await w.h.metadata.runs.list(sourceId)).length > runsBefore, 10_000, 'the catch-up sync');
    g.addPermission(memo.id, { type: 'user', emailAddress: u('bob'), role: 'reader' });
    await msUntil(async () => (await w.visible(u('bob'), 'gadget')).includes(docId(memo)), 10_000, 'a grant through the new channel');
  });

  it('removing the source stops its channel', async () => {
    expect((await w.admin(`/v1/sources/${sourceId}`, undefined, 'DELETE')).status).toBe(204);
    expect(g.notifications.live()).toHaveLength(0);
  });
});

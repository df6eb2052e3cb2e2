import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemWatchers } from '../src/services.ts';
import { startFakeGraph, type FakeGraph } from './fakes/graph/index.ts';
import { msUntil, startNotifyWorld, waitUntil, type NotifyWorld } from './support/notify-world.ts';

const acl = (...read: string[]) => JSON.stringify({ read });

/**
 * `config.watch: true` on a filesystem source, with no schedule ticking: file and ACL-file events
 * become debounced incremental syncs. And with notifications off, a schedule alone still
 * converges (filesystem and SharePoint).
 */
describe('filesystem watch end to end', () => {
  let w: NotifyWorld;
  let dir: string;
  let sourceId: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'notify-fs-'));
    await mkdir(path.join(dir, 'sales'));
    await writeFile(path.join(dir, 'sales', '.clearance-acl.json'), acl('user:alice@acme.test', 'user:bob@acme.test'));
    await writeFile(path.join(dir, 'sales', 'prices.md'), '# Prices\n\nThe doohickey costs 12 pounds.\n');
    await writeFile(path.join(dir, 'sales', 'memo.md'), '# Memo\n\nThe doohickey launch is planned.\n');
    w = await startNotifyWorld({ notifications: false });
    const created = await w.admin('/v1/sources', { name: 'share', type: 'filesystem', config: { path: dir, watch: true } });
    expect(created.status).toBe(201);
    sourceId = created.body.id;
    expect((await w.syncAndWait(sourceId, 'full')).status).toBe('succeeded');
    await waitUntil(async () => filesystemWatchers(w.h)?.watched().includes(sourceId), 10_000, 'the folder to be watched');
    expect((await w.admin(`/v1/sources/${sourceId}`)).body.notifications).toMatchObject({ enabled: true, mode: 'watch' });
  }, 120_000);
  afterAll(async () => {
    await w?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const externalId = async (name: string) => (await w.h.metadata.documents.list({ sourceId, limit: 100 })).find((d) => d.path?.endsWith(name))!.id;

  it('an ACL-file revocation disappears from search within 10 s', async () => {
    const id = await externalId('prices.md');
    expect(await w.visible('bob@acme.test', 'doohickey')).toContain(id);
    await writeFile(path.join(dir, 'sales', '.clearance-acl.json'), acl('user:alice@acme.test'));
    await msUntil(async () => !(await w.visible('bob@acme.test', 'doohickey')).includes(id), 10_000, 'the revocation to reach search');
    expect(await w.visible('alice@acme.test', 'doohickey')).toContain(id);
  });

  it('a content edit is searchable within 10 s', async () => {
    await writeFile(path.join(dir, 'sales', 'memo.md'), '# Memo\n\nThe doohickey launch moves to July with a discount.\n');
    await msUntil(async () => (await w.texts('alice@acme.test', 'discount')).some((t) => t.includes('discount')), 10_000, 'the edit to reach search');
  });

  it('a burst of 300 file writes is coalesced into at most two syncs per debounce window it spans', async () => {
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 30_000, 'quiet');
    const before = (await w.h.metadata.runs.list(sourceId)).length;
    await mkdir(path.join(dir, 'sales', 'bulk'));
    const started = Date.now();
    for (let i = 0; i < 300; i++) await writeFile(path.join(dir, 'sales', 'bulk', `f${i}.md`), `# Bulk ${i}\n\nBulk doohickey note ${i}.\n`);
    const burstMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 3_000));
    await waitUntil(async () => !(await w.h.metadata.runs.active(sourceId)), 60_000, 'quiet');
    const syncs = (await w.h.metadata.runs.list(sourceId)).length - before;
    console.log(`300 file writes in ${burstMs} ms caused ${syncs} sync(s)`);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(2 + Math.max(0, Math.ceil((burstMs - 1000) / 1000)));
    expect(await w.h.metadata.documents.count(sourceId)).toBe(302);
  });
});

describe('with notifications off, the scheduled sync still converges', () => {
  let w: NotifyWorld;
  let g: FakeGraph;
  let dir: string;
  beforeAll(async () => {
    w = await startNotifyWorld({ notifications: false });
    g = await startFakeGraph({ pageSize: 50 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'notify-off-'));
  }, 60_000);
  afterAll(async () => {
    await w?.close();
    await g?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('filesystem without watch: an ACL change arrives with the next scheduled run', async () => {
    await writeFile(path.join(dir, '.clearance-acl.json'), acl('user:alice@acme.test', 'user:bob@acme.test'));
    await writeFile(path.join(dir, 'plan.md'), '# Plan\n\nThe thingamajig plan.\n');
    const { body } = await w.admin('/v1/sources', { name: 'plain', type: 'filesystem', config: { path: dir } });
    expect((await w.syncAndWait(body.id, 'full')).status).toBe('succeeded');
    const id = (await w.h.metadata.documents.list({ sourceId: body.id, limit: 10 }))[0]!.id;
    expect(await w.visible('bob@acme.test', 'thingamajig')).toContain(id);
    await writeFile(path.join(dir, '.clearance-acl.json'), acl('user:alice@acme.test'));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await w.visible('bob@acme.test', 'thingamajig')).toContain(id); // nothing is watching
    await w.h.jobs.setSchedule(body.id, 1);
    await msUntil(async () => !(await w.visible('bob@acme.test', 'thingamajig')).includes(id), 30_000, 'the scheduled sync');
    await w.h.jobs.setSchedule(body.id, null);
  });

  it('SharePoint without PUBLIC_BASE_URL: no subscription, and a revocation arrives with the next scheduled run', async () => {
    const alice = g.addUser('alice@contoso.test');
    const bob = g.addUser('bob@contoso.test');
    const site = g.addSite('Ops');
    const drive = g.addDrive(site.id, 'Documents', { permissions: [{ user: alice.id }, { user: bob.id }] });
    const file = g.addFile(drive.id, '/runbook.txt', 'Contoso runbook for the whatsit.');
    const { config, credentials } = g.sourceConfig({ siteIds: [site.id] });
    const { body } = await w.admin('/v1/sources', { name: 'ops', type: 'sharepoint', config, credentials });
    expect([...g.notifications.live()]).toHaveLength(0);
    expect((await w.admin(`/v1/sources/${body.id}`)).body.notifications).toMatchObject({ enabled: false, mode: 'off', subscriptions: [] });
    expect((await w.syncAndWait(body.id, 'full')).status).toBe('succeeded');
    const id = (await w.h.metadata.documents.list({ sourceId: body.id, limit: 10 }))[0]!.id;
    expect(await w.visible(bob.mail!, 'whatsit')).toContain(id);
    g.setPermissions(file.id, [{ user: alice.id }]);
    await w.h.jobs.setSchedule(body.id, 1);
    await msUntil(async () => !(await w.visible(bob.mail!, 'whatsit')).includes(id), 30_000, 'the scheduled sync');
    await w.h.jobs.setSchedule(body.id, null);
    expect(await w.visible(alice.mail!, 'whatsit')).toContain(id);
  });
});

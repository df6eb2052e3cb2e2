import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateSource } from '../src/freshness/evaluate.ts';
import { deliverOutbox } from '../src/freshness/notify.ts';
import { acknowledge, alertWithHistory, listAlertPage } from '../src/freshness/service.ts';
import { PgDriver } from '../src/metadata/pg.ts';
import { sqlStores, type Stores } from '../src/metadata/store.ts';
import type { FreshnessPolicy } from '../src/types.ts';
import { createHarness, userCtx, type Harness } from './support/harness.ts';

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
async function reachable() {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}
const DAY = 86_400_000;

/** The same SQL on a real server, where evaluations in separate connections really do race. */
describe.runIf(await reachable())('freshness on Postgres', () => {
  const schema = `clr_fresh_${randomBytes(6).toString('hex')}`;
  let admin: pg.Client;
  let stores: Stores;
  let store: Stores['metadata'];
  let h: Harness;
  let server: http.Server;
  let url: string;
  const received: string[] = [];

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    stores = sqlStores(new PgDriver({ connectionString: PG_URL, schema, max: 6 }));
    store = stores.metadata;
    await store.migrate();
    h = await createHarness({ stores });
    server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => { raw += c; });
      req.on('end', () => {
        received.push(...JSON.parse(raw).events.map((e: { id: string }) => e.id));
        res.writeHead(204).end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await h?.cleanup();
    await store?.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('opens each alert once under concurrent evaluations, notifies once, and resolves on delete', async () => {
    const s = await store.sources.create({ name: 'pg', type: 'filesystem', config: {}, credentialsEncrypted: null, schedule: null, freshness: { maxAgeDays: 30, webhookUrl: url } as FreshnessPolicy });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const d = await store.documents.upsert({
        sourceId: s.id, externalId: `d${i}`, title: `Doc ${i}`, url: null, path: `/d${i}.md`, mimeType: null, owner: i % 2 ? 'o@acme.test' : null,
        labels: [], lastModified: new Date(Date.now() - (i < 30 ? 60 : 5) * DAY), contentVersion: null, contentHash: null,
        aclHash: 'x', acl: [], generation: 1, chunkCount: 1, status: 'indexed', error: null,
      }, 'r');
      ids.push(d.id);
    }
    const results = await Promise.all([1, 2, 3].map(() => evaluateSource({ ctx: h, sourceId: s.id })));
    expect(results.reduce((n, r) => n + r.opened, 0)).toBe(30);
    const { alerts } = await listAlertPage({ ctx: h, input: { sourceId: s.id, limit: 100 } });
    expect(alerts).toHaveLength(30);
    const histories = await Promise.all(alerts.map((a) => h.alerts.history(a.id)));
    expect(histories.map((events) => events.map((e) => e.type))).toEqual(alerts.map(() => ['opened']));

    await acknowledge({ ctx: userCtx(h, 'rita@acme.test'), input: { id: alerts[0]!.id, note: 'seen', snoozeDays: 3 } });
    const deliveries = await Promise.all([deliverOutbox({ ctx: h }), deliverOutbox({ ctx: h })]);
    expect(deliveries.reduce((n, d) => n + d.delivered, 0)).toBe(31);
    expect(new Set(received).size).toBe(31);
    expect(received).toHaveLength(31);

    await store.documents.delete(alerts[1]!.documentId!);
    expect(await evaluateSource({ ctx: h, sourceId: s.id })).toMatchObject({ resolved: 1 });
    expect(await alertWithHistory({ ctx: h, id: alerts[1]!.id })).toMatchObject({ status: 'resolved', resolution: 'deleted' });

    // Removing the source removes its alerts, history and outbox with it.
    const eventIds = (await Promise.all(alerts.map((a) => h.alerts.history(a.id)))).flat().map((e) => e.id);
    expect(await h.alerts.outboxState(eventIds[0]!)).not.toBeNull();
    await store.sources.delete(s.id);
    expect((await listAlertPage({ ctx: h, input: { sourceId: s.id, limit: 100 } })).alerts).toEqual([]);
    for (const a of alerts) expect(await h.alerts.history(a.id)).toEqual([]);
    for (const id of eventIds) expect(await h.alerts.outboxState(id)).toBeNull();
  });
});

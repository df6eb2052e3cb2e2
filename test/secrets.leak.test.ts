import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { registry } from '../src/metrics.ts';
import { startWorkers } from '../src/services.ts';
import type { ChunkPoint } from '../src/vectorstore/interface.ts';
import { startFakeConfluence, type FakeConfluence } from './fakes/confluence/index.ts';
import { DIRECTORY_SCOPE, DRIVE_SCOPE, startFakeGoogle, type FakeGoogle } from './fakes/google/index.ts';
import { startFakeGraph, type FakeGraph } from './fakes/graph/index.ts';
import { createHarness, type Harness } from './support/harness.ts';

const ADMIN = 'leak-test-admin-token-7f3a9c21d4';

/**
 * Every configured secret — the admin token, a client secret, two private keys, an API token, the
 * key that encrypts credentials — against everything the service emits while a full world runs:
 * each API response, each log line (at trace level), the metrics page and every vector payload.
 * None may contain any of them, whole or in a recognisable piece.
 */
describe('secrets never leave the service', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let graph: FakeGraph;
  let google: FakeGoogle;
  let confluence: FakeConfluence;
  const logs: string[] = [];
  const responses: string[] = [];
  const secrets = new Map<string, string>();

  /** Every request goes through here, so its response (headers and body) joins the haystack. */
  async function call(p: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<{ status: number; json: any }> {
    const res = await app.request(p, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${init.token ?? ADMIN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.text();
    const headers: string[] = [];
    res.headers.forEach((v, k) => headers.push(`${k}: ${v}`));
    responses.push(`${p} ${res.status} ${headers.join('; ')} ${text}`);
    let json: unknown = null;
    try { json = JSON.parse(text); } catch { /* CSV, metrics */ }
    return { status: res.status, json };
  }

  /** A secret and its recognisable pieces (a PEM's body lines, say). */
  function secret(name: string, value: string) {
    secrets.set(name, value);
    const body = value.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    for (let i = 0; i + 40 <= body.length && value.includes('-----'); i += 200) secrets.set(`${name} (piece at ${i})`, body.slice(i, i + 40));
  }

  beforeAll(async () => {
    const sink = new Writable({ write(chunk, _enc, done) { logs.push(String(chunk)); done(); } });
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, COMPLIANCE_GROUP: 'compliance', LOG_LEVEL: 'trace' } });
    h.log = pino({ level: 'trace' }, sink);
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    secret('admin token', ADMIN);
    secret('credential encryption key', h.secretKey.toString('base64'));

    graph = await startFakeGraph({ pageSize: 5, clientSecret: `graph-secret-${randomBytes(12).toString('hex')}` });
    const alice = graph.addUser('alice@contoso.test');
    const site = graph.addSite('Contoso');
    const drive = graph.addDrive(site.id, 'Documents', { permissions: [{ user: alice.id }] });
    graph.addFile(drive.id, '/Plan.md', '# Plan\n\nContoso ships in spring.');
    const cert = await graph.addCertificate();
    secret('SharePoint client secret', graph.clientSecret!);
    secret('SharePoint certificate private key', cert.privateKeyPem);

    google = await startFakeGoogle({ pageSize: 5 });
    google.addUser('admin@acme.test', { admin: true });
    const key = google.createServiceAccount('sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
    const shared = google.addSharedDrive('Finance', [{ type: 'user', emailAddress: 'admin@acme.test' }]);
    google.addFile(shared.id, 'q1.txt', 'Q1 revenue grew.');
    secret('Google service-account private key', key.private_key!);

    confluence = await startFakeConfluence({ pageSize: 5 });
    const ana = confluence.addUser('ana@acme.test');
    confluence.addSpace('ENG', { view: [{ user: ana.accountId }] });
    confluence.addPage('ENG', 'Runbook', '<h1>Runbook</h1><p>Restart the service.</p>');
    secret('Confluence API token', String(confluence.sourceConfig(['ENG']).credentials.apiToken));

    const corpus = path.join(h.dir, 'corpus');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(corpus, 'hello.md'), '# Hello\n\nThe cafeteria opens at eight.');

    const sp = graph.sourceConfig({ siteIds: [site.id] });
    const spCert = graph.sourceConfig({ siteIds: [site.id] }, { certificate: cert });
    const gd = google.sourceConfig(key, { driveIds: [shared.id] });
    const cf = confluence.sourceConfig(['ENG']);
    const sources = [
      { name: 'files', type: 'filesystem', config: { path: corpus } },
      { name: 'sp-secret', type: 'sharepoint', config: sp.config, credentials: sp.credentials },
      { name: 'sp-cert', type: 'sharepoint', config: spCert.config, credentials: spCert.credentials },
      { name: 'drive', type: 'google_drive', config: gd.config, credentials: gd.credentials },
      { name: 'wiki', type: 'confluence', config: cf.config, credentials: cf.credentials },
    ];
    for (const s of sources) {
      const created = await call('/v1/sources', { body: { ...s, freshness: { maxAgeDays: 0 } } });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      const { id } = created.json;
      const sync = await call(`/v1/sources/${id}/sync`, { body: {} });
      await h.jobs.idle();
      const run = await call(`/v1/runs/${sync.json.runId}`);
      expect(run.json.status, JSON.stringify(run.json)).toBe('succeeded');
      await call(`/v1/sources/${id}`);
      await call(`/v1/sources/${id}/runs`);
      // Credentials sent back unchanged, and wrong ones: the connection test's 422 must not echo them.
      if (s.credentials) {
        await call(`/v1/sources/${id}`, { method: 'PATCH', body: { credentials: s.credentials } });
        const wrong = JSON.parse(JSON.stringify(s.credentials).replace(/"(clientSecret|apiToken)":"/, '"$1":"x'));
        await call(`/v1/sources/${id}`, { method: 'PATCH', body: { credentials: wrong } });
      }
    }
    // A bad create echoes nothing either.
    await call('/v1/sources', { body: { name: 'bad', type: 'confluence', config: cf.config, credentials: { email: 'x', apiToken: `${cf.credentials.apiToken}-wrong` } } });
    await call('/v1/sources', { body: { name: 'bad2', type: 'google_drive', config: gd.config, credentials: { serviceAccountKey: { ...key, client_email: 'nobody@x.test' } } } });
    const tokens = {
      alice: await mintDevToken({ email: 'alice@contoso.test', dataDir: h.config.dataDir }),
      rita: await mintDevToken({ email: 'rita@acme.test', groups: ['compliance'], dataDir: h.config.dataDir }),
    };
    await call('/v1/search', { token: tokens.alice, body: { query: 'plan spring' } });
    await call('/v1/sources');
    await call('/v1/audit');
    await call('/v1/freshness/alerts', { token: tokens.rita });
    await call('/v1/freshness/summary', { token: tokens.rita });
    await call('/v1/agents', { body: { name: 'bot', sourceIds: [] } });
    await call('/readyz');
    await call('/openapi.json');
    responses.push(await registry.metrics());
  }, 300_000);

  afterAll(async () => {
    await h?.cleanup();
    await Promise.all([graph?.close(), google?.close(), confluence?.close()]);
  });

  it('the world actually ran (so the haystack is not empty)', () => {
    expect(responses.length).toBeGreaterThan(30);
    expect(logs.join('')).toMatch(/sync finished/);
    expect(secrets.size).toBeGreaterThan(8);
  });

  it.each(['API responses', 'log lines', 'vector payloads'] as const)('finds no secret in the %s', (where) => {
    const points = [...((h.vectors as unknown as { points: Map<string, ChunkPoint> }).points.values())];
    const haystack = where === 'API responses' ? responses : where === 'log lines' ? logs : points.map((p) => JSON.stringify({ ...p, vector: undefined }));
    if (where === 'vector payloads') expect(haystack.length).toBeGreaterThan(3);
    const found: string[] = [];
    for (const [name, value] of secrets) for (const item of haystack) if (item.includes(value)) found.push(`${name} in ${item.slice(0, 200)}`);
    expect(found).toEqual([]);
  });
});

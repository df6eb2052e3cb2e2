import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';
import { startWorkers } from '../src/services.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ADMIN = 'console-admin-token-0123456789';

// Debian's chromium is an optional system package; without it this suite has nothing to drive.
describe.runIf(existsSync(CHROMIUM))('web console in a real browser', () => {
  let h: Harness;
  let server: ReturnType<typeof serve>;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN } });
    await startWorkers(h);
    const app = createApp(h, createAuthenticator(h.config));
    const corpus = path.join(h.dir, 'corpus');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(corpus, 'hello.md'), '# Hello\n\nThe cafeteria opens at eight.');
    const created = await app.request('/v1/sources', { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Team wiki <b>', type: 'filesystem', config: { path: corpus } }) });
    const { id } = await created.json();
    await app.request(`/v1/sources/${id}/sync`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    await h.jobs.idle();
    const token = await mintDevToken({ email: 'ana@acme.test', dataDir: h.config.dataDir });
    await app.request('/v1/search', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'when does the cafeteria open' }) });
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
    await h?.cleanup();
  });

  it('shows sources with their last run, and the audit trail, for an admin token', async () => {
    const page = await browser.newPage();
    await page.goto(base + '/');
    await expect(page.textContent('main')).resolves.toContain('Paste a token');
    await page.fill('#token', ADMIN);
    await page.dispatchEvent('#token', 'change');
    await page.waitForSelector('text=Team wiki');
    const table = await page.textContent('main');
    expect(table).toContain('Team wiki <b>'); // escaped, not rendered as markup
    expect(table).toContain('succeeded');
    expect(table).toMatch(/seen 1/);
    await page.click('nav button[data-tab="alerts"]');
    await page.waitForSelector('text=No open alerts');
    await page.click('nav button[data-tab="audit"]');
    await page.waitForSelector('text=when does the cafeteria open');
    expect(await page.textContent('main')).toContain('ana@acme.test');
    await page.close();
  });

  it('shows the API\'s refusal for a wrong token', async () => {
    const page = await browser.newPage();
    await page.goto(base + '/');
    await page.fill('#token', 'not-a-valid-token');
    await page.dispatchEvent('#token', 'change');
    await page.waitForSelector('.err');
    expect(await page.textContent('.err')).toMatch(/token/i);
    await page.close();
  });
});

import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { startWorkers } from '../src/services.ts';
import { chromiumAvailable, expectAccessible, launch, listenApp, screenshot, signIn } from './support/browser.ts';
import { createHarness, type Harness } from './support/harness.ts';

const ADMIN = 'console-admin-token-0123456789';
const DAY = 86_400_000;

/**
 * Issue 16's walks through the web console in headless Chromium: an admin adds a folder source and
 * watches its first sync, reads the run history, edits the freshness policy and sees alerts appear;
 * a compliance reviewer filters alerts, snoozes one, acknowledges one, reads its history, downloads
 * the CSV and opens an audit record. Every step asserts what the page shows; axe-core checks each
 * screen. The walks share one service and run in order, as the two people would.
 */
describe.runIf(chromiumAvailable())('web console in a real browser', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let server: { base: string; close(): void };
  let browser: Browser;
  let corpus: string;
  let reviewer: string;

  beforeAll(async () => {
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, COMPLIANCE_GROUP: 'compliance' } });
    await startWorkers(h);
    app = createApp(h, createAuthenticator(h.config));
    corpus = path.join(h.dir, 'corpus', 'team-wiki');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    const files: [string, string, number][] = [
      ['handbook.md', '# Team handbook\n\nThe cafeteria opens at eight.', 0],
      ['restore-runbook.md', '# Restore runbook\n\nRestore the database from the nightly snapshot.', 400],
      ['travel-policy.md', '# Travel policy\n\nBook trains for trips under four hours.', 200],
      ['onboarding-template.md', '# Onboarding template\n\nFill in the new hire\'s name.', 400],
    ];
    for (const [name, text, ageDays] of files) {
      const file = path.join(corpus, name);
      await writeFile(file, text);
      const when = new Date(Date.now() - ageDays * DAY);
      await utimes(file, when, when);
    }
    reviewer = await mintDevToken({ email: 'rita@acme.test', groups: ['compliance'], dataDir: h.config.dataDir });
    server = await listenApp(app);
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
    await h?.cleanup();
  });

  async function newPage(width: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    // Two shared cores under other people's load: generous waits, never sleeps.
    page.setDefaultTimeout(45_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
    (page as any).errors = errors;
    return page;
  }

  it('walks an admin through adding a folder, its first sync, the run history, the freshness policy and the alerts it raises', async () => {
    const page = await newPage(1280);
    await page.goto(server.base + '/');
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await signIn(page, server.base, ADMIN);
    await page.getByText('No sources yet').waitFor();
    await expectAccessible(page, 'empty sources list');

    // Add a source: the connection test's refusal is shown in the form, then a good folder is added.
    await page.getByRole('link', { name: 'Add source' }).click();
    await page.getByRole('heading', { name: 'Add a source' }).waitFor();
    await page.getByLabel('Type').selectOption('filesystem');
    await page.getByLabel('Name').fill('Team wiki');
    await page.getByLabel('Folder path').fill(path.join(h.dir, 'corpus', 'missing'));
    await page.getByRole('button', { name: 'Test connection and add' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/connection test failed: .*does not exist/i);
    await expectAccessible(page, 'add-source form with an error');
    await page.getByLabel('Folder path').fill(corpus);
    // A marker that only survives if the page is never reloaded while the sync runs.
    await page.evaluate(() => { (globalThis as any).__sameDocument = true; });
    await page.getByRole('button', { name: 'Test connection and add' }).click();

    // The first sync progresses to completion on the source's page, without a reload.
    await page.getByRole('heading', { name: 'Team wiki' }).waitFor();
    expect(page.url()).toMatch(/#\/sources\/[0-9a-f-]{36}$/);
    const current = page.locator('section[aria-labelledby=progress-title]');
    await current.getByText(/Idle\. Last sync succeeded/).waitFor();
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    await expect(page.locator('.panel').first().textContent()).resolves.toContain(corpus); // a path, not a file:// link

    // Its run in the history, with what it did.
    const history = page.locator('section[aria-labelledby=history-title] tbody tr');
    await expect(history.count()).resolves.toBe(1);
    const run = await history.first().textContent();
    expect(run).toMatch(/full/);
    expect(run).toMatch(/succeeded/);
    expect(run).toMatch(/seen 4 · added 4/);
    expect(run).toMatch(/just now|seconds? ago/);
    await expectAccessible(page, 'source page');
    await screenshot(page, 'console-source-1280');

    // Freshness policy: a 180-day default, templates exempt; the preview counts before saving.
    await page.getByLabel('Default: review after (days)').fill('180');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByLabel('Rule 1: match').selectOption('pathGlob');
    await page.getByLabel('Rule 1: pattern').fill('**/*template*');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText('Decides 1 of 4 documents; 0 stale under this rule.').waitFor();
    await page.getByText('2 of 4 documents would be stale; 1 exempt.').waitFor();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByText('Policy saved; alerts are being re-evaluated.').waitFor();

    // The alerts the policy raises appear on the Freshness page (evaluation runs in the background).
    await page.getByRole('link', { name: 'Freshness' }).click();
    await page.getByRole('heading', { name: 'Freshness alerts' }).waitFor();
    await expect.poll(async () => {
      await page.getByRole('button', { name: 'Filter' }).click();
      return page.getByText(/\d+ alerts? shown/).textContent();
    }, { timeout: 60_000, interval: 500 }).toBe('2 alerts shown.');
    const alerts = await page.locator('main tbody').textContent();
    expect(alerts).toContain('Restore runbook');
    expect(alerts).toContain('Travel policy');
    expect(alerts).not.toContain('Onboarding template');
    expect(alerts).toMatch(/400 days/);
    await screenshot(page, 'console-alerts-1280');
    await page.getByRole('link', { name: 'Sources' }).click();
    await page.getByRole('link', { name: 'Team wiki' }).waitFor();
    expect(await page.locator('main tbody').textContent()).toMatch(/Folder \(filesystem\).*manual only.*succeeded/);
    await screenshot(page, 'console-sources-1280');
    expect((page as any).errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('walks a compliance reviewer through filtering, snoozing, acknowledging, history, CSV and an audit record, at phone width', async () => {
    // Someone searched: the audit trail has a record with what they received.
    const ana = await mintDevToken({ email: 'ana@acme.test', dataDir: h.config.dataDir });
    const searched = await app.request('/v1/search', {
      method: 'POST', headers: { authorization: `Bearer ${ana}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'how do I restore the database', topK: 3 }),
    });
    const { results } = await searched.json() as { results: { documentId: string; title: string }[] };
    expect(results.length).toBeGreaterThan(0);

    const page = await newPage(390);
    await signIn(page, server.base, reviewer, '#/alerts');
    await page.getByRole('heading', { name: 'Freshness alerts' }).waitFor();
    await page.getByText('2 alerts shown.').waitFor();
    await expect(page.getByRole('group', { name: 'Alert counts' }).textContent()).resolves.toMatch(/2\s*open/);
    await expectAccessible(page, 'alerts at 390 px');
    await screenshot(page, 'console-alerts-390');
    // Nothing runs off the side of a phone screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    // Filter: stale documents at least 300 days old.
    await page.getByLabel('Kind').selectOption('document');
    await page.getByLabel('At least (days old)').fill('300');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('1 alert shown.').waitFor();
    expect(await page.locator('main tbody').textContent()).toContain('Restore runbook');
    await page.getByLabel('At least (days old)').fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('2 alerts shown.').waitFor();

    // Snooze one, with the keyboard alone: the dialog takes focus and gives it back.
    await page.getByRole('button', { name: 'Snooze Travel policy' }).focus();
    await page.keyboard.press('Enter');
    const snooze = page.getByRole('dialog', { name: 'Snooze "Travel policy"' });
    await snooze.waitFor();
    await expectAccessible(page, 'snooze dialog');
    await page.keyboard.type('Owner is on leave; revisit after the trip season');
    await snooze.getByLabel('Snooze for (days)').fill('14');
    await snooze.getByRole('button', { name: 'Snooze' }).press('Enter');
    await page.getByText('1 alert shown.').waitFor();
    expect(await page.locator('main tbody').textContent()).not.toContain('Travel policy');

    // Acknowledge the other with a note.
    await page.getByRole('button', { name: 'Acknowledge Restore runbook' }).click();
    const ack = page.getByRole('dialog', { name: 'Acknowledge "Restore runbook"' });
    await ack.getByLabel('Note for the audit trail').fill('Runbook is replaced next quarter');
    await ack.getByRole('button', { name: 'Acknowledge' }).click();
    await page.getByText('No alerts match these filters.').waitFor();

    // Every status: one snoozed, one acknowledged; then the acknowledged one's history.
    await page.getByLabel('Status').selectOption('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('2 alerts shown.').waitFor();
    const all = await page.locator('main tbody').textContent();
    expect(all).toMatch(/snoozed/);
    expect(all).toMatch(/acknowledged/);
    await page.getByRole('button', { name: 'History of Restore runbook' }).click();
    const historyDialog = page.getByRole('dialog', { name: 'History of "Restore runbook"' });
    await historyDialog.locator('ol.history li').nth(1).waitFor();
    const story = await historyDialog.textContent();
    expect(story).toMatch(/opened/);
    expect(story).toContain('by rita@acme.test');
    expect(story).toContain('Runbook is replaced next quarter');
    await historyDialog.getByRole('button', { name: 'Close' }).click();

    // CSV of what the filters select.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    expect(download.suggestedFilename()).toBe('freshness-alerts.csv');
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toMatch(/^id,kind,documentId,sourceId,title,/);
    expect(csv).toContain('Restore runbook');
    expect(csv).toContain('Runbook is replaced next quarter');
    expect(csv).toContain('Travel policy');

    // The audit trail: ana's search, and which documents it returned.
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    await page.getByLabel('Person (email)').fill('ana@acme.test');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('1 record.').waitFor();
    await expectAccessible(page, 'audit trail at 390 px');
    await screenshot(page, 'console-audit-390');
    await page.getByRole('button', { name: /^Details of the search/ }).click();
    const record = page.getByRole('dialog', { name: /search by ana@acme.test/ });
    await record.waitFor();
    const shown = await record.textContent();
    expect(shown).toContain('how do I restore the database');
    // Which documents came back, by name.
    for (const r of results) expect(shown).toContain(r.title);
    await record.getByRole('button', { name: 'Close' }).click();
    expect((page as any).errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('shows the API\'s refusal for a wrong token typed before the console has started', async () => {
    const page = await newPage(1280);
    // A slow script: the sign-in form is in the page before the console starts (after its views'
    // scripts, which load after the page's load event). Typed into then, the token was
    // cleared when the script started, or submitted by the browser itself as a query string.
    await page.route('**/console/admin.js', async (route) => {
      await new Promise((r) => setTimeout(r, 1_000));
      await route.continue();
    });
    await signIn(page, server.base, 'not-a-valid-token');
    expect(page.url()).not.toContain('not-a-valid-token');
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/token/i);
    await page.close();
  });
});

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { available, CHROMIUM as DEFAULT_CHROMIUM } from './services.ts';

/** Browser tests drive Debian's Chromium; without it they fail under CI=true (services.ts). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM;
export const chromiumAvailable = () => available(`Chromium at ${CHROMIUM}`, existsSync(CHROMIUM));

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Serves a Hono app on a random loopback port. */
export async function listenApp(app: { fetch: (req: Request) => Response | Promise<Response> }) {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in the page (injected through the DevTools protocol, so the console's strict CSP
 * stays on) and fails on serious or critical violations, naming each rule and element.
 */
export async function expectAccessible(page: Page, where: string) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ['violations'] });
    return result.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')) }));
  });
  const bad = violations.filter((v: { impact: string }) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad, `${where}: ${JSON.stringify(bad, null, 1)}`).toEqual([]);
}

/** Screenshots go to test-results/screenshots; with UPDATE_SCREENSHOTS=1 also to docs/screenshots for the README. */
export async function screenshot(page: Page, name: string) {
  const root = path.resolve(import.meta.dirname, '../..');
  const dirs = [path.join(root, 'test-results/screenshots')];
  if (process.env.UPDATE_SCREENSHOTS === '1') dirs.push(path.join(root, 'docs/screenshots'));
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
  }
}

/** Signs in through the header's token box, as a person would. */
export async function signIn(page: Page, base: string, token: string, hash = '#/sources') {
  await page.goto(`${base}/${hash}`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Use token' }).click();
}

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelAvailable } from './support/services.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * `npm run demo` as a new user meets it: the tokens it prints work for people who see different
 * documents, and the command it prints for minting more mints a token the running demo accepts.
 */
describe.runIf(modelAvailable())('the demo, end to end', () => {
  let dir: string;
  let child: ChildProcess;
  let out = '';
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'clearance-demo-'));
    port = await freePort();
    child = spawn(process.execPath, [path.join(root, 'bin/clearance.mjs'), 'demo'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CLEARANCE_DATA_DIR: path.join(dir, 'data'), PORT: String(port), HOST: '127.0.0.1', TEST_MODEL_PATH: process.env.TEST_MODEL_PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { out += d; });
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (/edit ACL files under/.test(out)) { clearInterval(check); resolve(); }
      }, 200);
      child.once('exit', (code) => { clearInterval(check); reject(new Error(`the demo exited (${code}) before serving:\n${out}`)); });
    });
  }, 280_000);
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const search = async (token: string, query: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/search`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query, topK: 100 }),
    });
    expect(res.status).toBe(200);
    return new Set(((await res.json()) as { results: { url: string }[] }).results.map((r) => r.url));
  };

  it('prints ready tokens for people who see different documents', async () => {
    const tokens = new Map([...out.matchAll(/^\s+(\S+@acme\.test) \(([^)]*)\):\s+(\S+)$/gm)].map((m) => [m[1]!, m[3]!]));
    expect([...tokens.keys()]).toEqual(expect.arrayContaining(['alice@acme.test', 'bob@acme.test']));
    const alice = await search(tokens.get('alice@acme.test')!, 'expense approval');
    const bob = await search(tokens.get('bob@acme.test')!, 'expense approval');
    expect(alice.size).toBeGreaterThan(0);
    expect(bob.size).toBeGreaterThan(0);
    expect([...bob].some((u) => u.includes('/finance/'))).toBe(true);
    expect([...alice].some((u) => u.includes('/finance/'))).toBe(false);
    expect([...alice].some((u) => u.includes('/engineering/'))).toBe(true);
  });

  it('prints a token command that mints tokens the running demo accepts', async () => {
    const line = /more:\s+AUTH_MODE=dev npx clearance token (.+)$/m.exec(out);
    expect(line, out).not.toBeNull();
    const args = line![1]!.split(/\s+/);
    const { stdout } = await run(process.execPath, [path.join(root, 'bin/clearance.mjs'), 'token', ...args], {
      cwd: root, env: { PATH: process.env.PATH, AUTH_MODE: 'dev' },
    });
    const erin = await search(stdout.trim(), 'partner discounts');
    expect([...erin].some((u) => u.includes('/sales/'))).toBe(true);
    expect([...erin].some((u) => u.includes('/finance/'))).toBe(false);
  });
});

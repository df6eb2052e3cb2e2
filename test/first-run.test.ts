import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { whoCannotAuthenticate } from '../src/cli/serve.ts';
import { tokenDataDir } from '../src/cli/token.ts';
import { loadConfig } from '../src/config.ts';
import { LocalEmbedder } from '../src/embedder/local.ts';
import { createDevVerifier, loadDevSecret } from '../src/identity/dev.ts';
import { checkHeartbeat, startHeartbeat } from '../workers/health.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

describe('first run', () => {
  let dir: string;
  let cwd: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'clearance-first-run-'));
    cwd = process.cwd();
    process.chdir(dir);
  });
  afterEach(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  /** What a server leaves in its data directory on first start (the credential key, the dev-token key). */
  const serverRanIn = (d: string) => {
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'secret.key'), 'x');
    loadDevSecret(d);
  };

  describe('clearance token finds the running server\'s key', () => {
    it('signs for the demo\'s data directory when only the demo has run', async () => {
      const demo = path.join(dir, 'data/demo');
      serverRanIn(demo);
      // A token command run earlier against ./data left a key there, but no server uses it.
      loadDevSecret(path.join(dir, 'data'));
      const choice = tokenDataDir({ env: { AUTH_MODE: 'dev' }, demoDir: demo });
      expect(choice.dir).toBe(demo);
      expect(choice.note).toMatch(/demo/);
    });

    it('prefers ./data when a server runs there, and an explicit choice over both', () => {
      const demo = path.join(dir, 'data/demo');
      serverRanIn(demo);
      serverRanIn(path.join(dir, 'data'));
      expect(tokenDataDir({ env: {}, demoDir: demo }).dir).toBe(path.join(dir, 'data'));
      expect(tokenDataDir({ env: { CLEARANCE_DATA_DIR: demo }, demoDir: demo }).dir).toBe(demo);
      expect(tokenDataDir({ dataDir: 'elsewhere', env: { CLEARANCE_DATA_DIR: demo }, demoDir: demo }).dir).toBe(path.join(dir, 'elsewhere'));
      expect(tokenDataDir({ env: {}, demoDir: path.join(dir, 'nothing') }).dir).toBe(path.join(dir, 'data'));
    });

    it('mints from the command line a token the demo\'s server accepts', async () => {
      const demo = path.join(dir, 'data/demo');
      serverRanIn(demo);
      const { stdout } = await run(process.execPath, [path.join(root, 'bin/clearance.mjs'), 'token', '--data-dir', demo, '--email', 'Erin@Acme.test', '--groups', 'sales, hr'], {
        cwd: dir, env: { PATH: process.env.PATH, AUTH_MODE: 'dev' },
      });
      const caller = await createDevVerifier({ dataDir: demo, ADMIN_GROUP: undefined, COMPLIANCE_GROUP: undefined }).verify(stdout.trim());
      expect(caller.email).toBe('erin@acme.test');
      expect(caller.groups).toEqual(['sales', 'hr']);
      // The same token is refused by a server on another data directory.
      serverRanIn(path.join(dir, 'other'));
      await expect(createDevVerifier({ dataDir: path.join(dir, 'other'), ADMIN_GROUP: undefined, COMPLIANCE_GROUP: undefined }).verify(stdout.trim())).rejects.toThrow();
    }, 60_000);
  });

  it('warns when nobody, or no user, could authenticate', () => {
    const base = loadConfig({});
    expect(whoCannotAuthenticate(base)).toMatch(/no one can authenticate.*OIDC_ISSUER.*ADMIN_TOKEN.*AUTH_MODE=dev/);
    expect(whoCannotAuthenticate({ ...base, ADMIN_TOKEN: 'x'.repeat(16) })).toMatch(/only ADMIN_TOKEN/);
    expect(whoCannotAuthenticate({ ...base, OIDC_ISSUER: 'https://idp.test/' })).toMatch(/admin/);
    expect(whoCannotAuthenticate({ ...base, OIDC_ISSUER: 'https://idp.test/', ADMIN_GROUP: 'admins' })).toBeNull();
    expect(whoCannotAuthenticate({ ...base, AUTH_MODE: 'dev' })).toBeNull();
  });

  it('names LOCAL_MODEL_PATH and HF_ENDPOINT when the model cannot be downloaded', async () => {
    // Nothing listens on port 9 of the loopback interface: the download fails as it would offline.
    const err = await LocalEmbedder.create({ model: 'acme/offline', cacheDir: path.join(dir, 'models'), remoteHost: 'http://127.0.0.1:9/' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/acme\/offline/);
    expect((err as Error).message).toMatch(/LOCAL_MODEL_PATH/);
    expect((err as Error).message).toMatch(/HF_ENDPOINT/);
  });

  describe('worker heartbeat', () => {
    const healthy = { jobs: { ping: async () => {} }, metadata: { ping: async () => {} } } as any;

    it('is healthy while the worker beats and its stores answer', async () => {
      const file = path.join(dir, 'beat');
      expect(checkHeartbeat(file).ok).toBe(false);
      const stop = startHeartbeat(healthy, file, 50);
      try {
        await expect.poll(() => existsSync(file)).toBe(true);
        expect(checkHeartbeat(file)).toMatchObject({ ok: true });
        // A worker that stopped beating a while ago is not healthy.
        expect(checkHeartbeat(file, Date.now() + 120_000).ok).toBe(false);
      } finally {
        stop();
      }
    });

    it('is unhealthy when the queue cannot be reached', async () => {
      const file = path.join(dir, 'beat');
      const stop = startHeartbeat({ ...healthy, jobs: { ping: async () => { throw new Error('ECONNREFUSED redis'); } } }, file, 50);
      try {
        await expect.poll(() => existsSync(file)).toBe(true);
        expect(checkHeartbeat(file)).toEqual({ ok: false, message: expect.stringMatching(/ECONNREFUSED redis/) });
      } finally {
        stop();
      }
    });

    it('answers `clearance worker --health` from the heartbeat file', async () => {
      const file = path.join(os.tmpdir(), 'clearance-worker.heartbeat');
      const had = existsSync(file);
      if (had) return; // a real worker on this machine owns the file
      writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), pid: 1, ok: true }));
      try {
        const { stdout } = await run(process.execPath, [path.join(root, 'bin/clearance.mjs'), 'worker', '--health'], { cwd: root });
        expect(stdout).toMatch(/alive/);
        const old = new Date(Date.now() - 3_600_000);
        writeFileSync(file, JSON.stringify({ at: old.toISOString(), pid: 1, ok: true }));
        utimesSync(file, old, old);
        await expect(run(process.execPath, [path.join(root, 'bin/clearance.mjs'), 'worker', '--health'], { cwd: root })).rejects.toMatchObject({ code: 1 });
      } finally {
        rmSync(file, { force: true });
      }
    }, 60_000);
  });
});

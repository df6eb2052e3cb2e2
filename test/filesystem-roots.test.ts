import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { createHarness, syncNow, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';

const ADMIN = 'roots-admin-token-0123456789';

/**
 * Where an admin may point a filesystem source: under FILESYSTEM_ROOTS, with `..` resolved and
 * symlinks followed, and never at the service's own data directory (which holds its secret key).
 */
describe('filesystem sources are held to FILESYSTEM_ROOTS', () => {
  let tmp: string;
  let root: string;
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  const req = requester(() => app);
  const add = (p: string, name = `s-${Math.random().toString(36).slice(2)}`) =>
    req('/v1/sources', { token: ADMIN, body: { name, type: 'filesystem', config: { path: p } } });

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-roots-'));
    root = path.join(tmp, 'shares');
    await mkdir(path.join(root, 'team'), { recursive: true });
    await writeFile(path.join(root, 'team', '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(root, 'team', 'note.md'), '# Note\n\nThe team meets on Tuesdays.');
    await symlink('/etc', path.join(root, 'escape'));
    // The data directory inside the allowed root: the folder holding it must still be refused.
    h = await createHarness({ env: { ADMIN_TOKEN: ADMIN, FILESYSTEM_ROOTS: `${root}, /nonexistent-root`, CLEARANCE_DATA_DIR: path.join(root, 'clearance-data') } });
    await mkdir(h.config.dataDir, { recursive: true });
    await writeFile(path.join(h.config.dataDir, 'secret.key'), 'do-not-index');
    app = createApp(h, createAuthenticator(h.config));
  });
  afterAll(async () => {
    await h.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  it('accepts a folder under a root', async () => {
    expect((await add(path.join(root, 'team'))).status).toBe(201);
    expect((await add(path.join(root, 'team', '..', 'team'))).status).toBe(201);
  });

  it.each([
    ['/etc', /outside FILESYSTEM_ROOTS/],
    ['/', /data directory|outside FILESYSTEM_ROOTS/],
    ['/proc/self', /outside FILESYSTEM_ROOTS/],
    ['../../', /outside FILESYSTEM_ROOTS|data directory/],
    ['ROOT/team/../../..', /outside FILESYSTEM_ROOTS|data directory/],
    ['ROOT/escape', /outside FILESYSTEM_ROOTS/],
    ['ROOT', /data directory/],
    ['ROOT/clearance-data', /data directory/],
    ['ROOT/does-not-exist', /does not exist/],
  ])('refuses %s with a 422 that names the allowed roots', async (p, why) => {
    const res = await add(p.replace('ROOT', root));
    expect(res.status).toBe(422);
    const { detail } = await res.json();
    expect(detail).toMatch(why);
    expect(detail).toContain(`allowed roots: ${root}`);
    expect(detail).not.toContain('/nonexistent-root');
  });

  it('refuses every filesystem source when FILESYSTEM_ROOTS is unset', async () => {
    const bare = await createHarness({ env: { ADMIN_TOKEN: ADMIN, FILESYSTEM_ROOTS: '' } });
    try {
      const res = await createApp(bare, createAuthenticator(bare.config)).request('/v1/sources', {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', type: 'filesystem', config: { path: tmp } }),
      });
      expect(res.status).toBe(422);
      expect((await res.json()).detail).toMatch(/set FILESYSTEM_ROOTS/);
    } finally {
      await bare.cleanup();
    }
  });

  it('checks again at every sync: a folder swapped for a symlink out of the roots fails the run and reads nothing', async () => {
    const folder = path.join(root, 'swap');
    await mkdir(folder);
    await writeFile(path.join(folder, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await writeFile(path.join(folder, 'a.md'), '# A\n\nfine');
    const created = await add(folder);
    expect(created.status).toBe(201);
    const { id } = await created.json();
    expect((await syncNow(h, id)).status).toBe('succeeded');
    await rm(folder, { recursive: true });
    await symlink('/etc', folder);
    const run = await syncNow(h, id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/outside FILESYSTEM_ROOTS/);
    const docs = await h.metadata.documents.list({ sourceId: id, limit: 100 });
    expect(docs.map((d) => d.externalId)).toEqual(['a.md']);
  });
});

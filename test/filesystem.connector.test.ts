import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFilesystemConnector } from '../src/connectors/filesystem/index.ts';
import type { Change } from '../src/connectors/interface.ts';

/**
 * The filesystem connector's listing: depth-first and sorted (so a page boundary is stable between
 * runs), pages of 100, hidden entries and symlinks skipped, each folder's ACL file inherited by the
 * folders below it. Files are stat'ed in runs at once; what they yield must not depend on it.
 */
describe('filesystem connector listing', () => {
  let root: string;
  let outside: string;
  const expected: string[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'clearance-fs-list-'));
    outside = await mkdtemp(path.join(os.tmpdir(), 'clearance-fs-outside-'));
    await writeFile(path.join(outside, 'elsewhere.md'), '# Elsewhere');
    await writeFile(path.join(root, '.clearance-acl.json'), JSON.stringify({ read: ['group:all'] }));
    // Names that sort differently by code unit than by number, files before and after a folder
    // within one directory, and more files than one stat run and one page.
    for (const name of ['b.md', 'a10.md', 'a2.md', 'z.md']) {
      await writeFile(path.join(root, name), `# ${name}`);
    }
    await mkdir(path.join(root, 'm-folder', 'inner'), { recursive: true });
    await writeFile(path.join(root, 'm-folder', '.clearance-acl.json'), JSON.stringify({ read: ['group:m'] }));
    for (let i = 0; i < 130; i++) await writeFile(path.join(root, 'm-folder', `f${String(i).padStart(3, '0')}.md`), `# File ${i}`);
    await writeFile(path.join(root, 'm-folder', 'inner', 'deep.md'), '# Deep');
    await writeFile(path.join(root, '.hidden.md'), '# Hidden');
    await mkdir(path.join(root, '.hidden-folder'));
    await writeFile(path.join(root, '.hidden-folder', 'x.md'), '# X');
    await symlink(path.join(outside, 'elsewhere.md'), path.join(root, 'link.md'));
    await symlink(outside, path.join(root, 'linked-folder'));

    expected.push('a10.md', 'a2.md', 'b.md');
    for (let i = 0; i < 130; i++) expected.push(`m-folder/f${String(i).padStart(3, '0')}.md`);
    expected.push('m-folder/inner/deep.md', 'z.md');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  const idOf = (c: Change) => (c.kind === 'upsert' ? c.doc.externalId : c.externalId);

  async function list() {
    const pages: Change[][] = [];
    for await (const page of createFilesystemConnector(root).changes({ cursor: null, full: true })) pages.push(page.changes);
    return pages;
  }

  it('lists depth-first in sorted order, in pages of 100, without hidden entries or symlinks', async () => {
    const pages = await list();
    expect(pages.map((p) => p.length)).toEqual([100, expected.length - 100]);
    expect(pages.flat().map(idOf)).toEqual(expected);
    // The same listing on every run: the engine relies on stable page boundaries.
    expect((await list()).flat().map(idOf)).toEqual(expected);
  });

  it('gives each file the ACL of its nearest folder with an ACL file, and its size and version', async () => {
    const byId = new Map((await list()).flat().map((c) => [idOf(c), c]));
    const acl = (id: string) => { const c = byId.get(id); return c?.kind === 'upsert' ? c.acl.principals : undefined; };
    expect(acl('a2.md')).toEqual(['group:all']);
    expect(acl('m-folder/f129.md')).toEqual(['group:m']);
    expect(acl('m-folder/inner/deep.md')).toEqual(['group:m']);
    const deep = byId.get('m-folder/inner/deep.md');
    expect(deep?.kind === 'upsert' && deep.doc.size).toBe('# Deep'.length);
    expect(deep?.kind === 'upsert' && deep.doc.contentVersion).toMatch(/^\d+:6$/);
  });
});

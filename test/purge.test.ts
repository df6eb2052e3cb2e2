import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { loadConfig } from '../src/config.ts';
import type { Services } from '../src/context.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { closeServices, createServices } from '../src/services.ts';
import { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';
import { FakeEmbedder } from './fakes/embedder.ts';
import { syncNow } from './support/harness.ts';

/**
 * Deleting must remove a document's text from disk, not only from search: the whole data directory
 * (PGlite files and the LanceDB table with all its versions) is read byte by byte for a marker that
 * only the deleted document contained, after a document deleted at the source is synced away and
 * after a source is deleted through the API.
 */

const ADMIN = 'purge-test-admin-token-0123456789';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Data files that contain `marker`, relative to `dir`. */
async function filesContaining(dir: string, marker: string): Promise<string[]> {
  const needle = Buffer.from(marker);
  const hits: string[] = [];
  for (const f of await filesUnder(dir)) {
    const bytes = await readFile(f).catch(() => null); // removed while we walked: fine
    if (bytes?.includes(needle)) hits.push(path.relative(dir, f));
  }
  return hits;
}

const filler = (n: number) => Array.from({ length: n }, (_, i) => `Ordinary handbook sentence number ${i} about expenses and travel.`).join(' ');

describe('purge: deleted text leaves the data directory', () => {
  let tmp: string;
  let s: Services;
  let app: ReturnType<typeof createApp>;
  let corpus: string;
  let sourceId: string;
  const docMarker = `purge-doc-marker-${randomBytes(8).toString('hex')}`;

  const req = (p: string, method = 'GET', body?: unknown) => app.request(p, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const dataDir = () => s.config.dataDir;
  const lance = () => s.vectors as LanceDbVectorStore;
  /** Purge passes follow deletes within PURGE_DELAY_SECONDS; a pass that cannot finish must not hang the test. */
  const settled = () => Promise.race([lance().purgeSettled(), sleep(30_000)]);

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-purge-'));
    corpus = path.join(tmp, 'corpus');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    // Enough documents that one deletion is a small fraction of the table: LanceDB's compaction
    // alone keeps a fragment with under 10 % of its rows deleted and nothing to merge with.
    for (let i = 0; i < 40; i++) await writeFile(path.join(corpus, `keep-${i}.md`), `# Keep ${i}\n\n${filler(12)}`);
    await writeFile(path.join(corpus, 'secret-plan.md'), `# Plan\n\nThe ${docMarker} project starts in May. ${filler(8)}`);
    const config = loadConfig({
      CLEARANCE_DATA_DIR: path.join(tmp, 'data'), LOG_LEVEL: 'silent', FILESYSTEM_ROOTS: tmp,
      AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, PURGE_DELAY_SECONDS: '0.2',
    });
    s = await createServices(config, { embedder: new FakeEmbedder({ dimension: 32, maxTokens: 64 }) });
    expect(s.vectors).toBeInstanceOf(LanceDbVectorStore);
    app = createApp(s, createAuthenticator(s.config));
    const res = await req('/v1/sources', 'POST', { name: 'handbook', type: 'filesystem', config: { path: corpus } });
    expect(res.status).toBe(201);
    sourceId = (await res.json()).id;
    expect((await syncNow(s, sourceId)).status).toBe('succeeded');
  });

  afterAll(async () => {
    if (s) await closeServices(s);
    await rm(tmp, { recursive: true, force: true });
  });

  it('a document deleted at the source and synced: its text is gone from every file, old versions included', async () => {
    const marker = docMarker;
    const file = path.join(corpus, 'secret-plan.md');
    await settled();
    // The check can see the marker: the data files keep text as plain bytes.
    expect(await filesContaining(dataDir(), marker)).not.toEqual([]);

    await rm(file);
    const run = await syncNow(s, sourceId);
    expect(run).toMatchObject({ status: 'succeeded', stats: expect.objectContaining({ deleted: 1 }) });
    await settled();
    expect(await filesContaining(dataDir(), marker)).toEqual([]);
    // The rest is still there and searchable.
    expect(await s.vectors.count({ sourceId })).toBeGreaterThan(40);
    expect(lance().lastPurge?.deletedRowsLeft ?? 0).toBe(0);
  });

  it('an edited document: the replaced text is gone too, the new text stays', async () => {
    const before = `purge-edit-before-${randomBytes(8).toString('hex')}`;
    const after = `purge-edit-after-${randomBytes(8).toString('hex')}`;
    const file = path.join(corpus, 'keep-3.md');
    await writeFile(file, `# Keep 3\n\n${before} ${filler(12)}`);
    expect((await syncNow(s, sourceId)).status).toBe('succeeded');
    await writeFile(file, `# Keep 3\n\n${after} ${filler(12)}`);
    expect((await syncNow(s, sourceId)).status).toBe('succeeded');
    await settled();
    expect(await filesContaining(dataDir(), before)).toEqual([]);
    expect(await filesContaining(dataDir(), after)).not.toEqual([]);
  });

  it('DELETE /v1/sources/:id: none of the source\'s text is left in the data directory', async () => {
    const marker = `purge-source-marker-${randomBytes(8).toString('hex')}`;
    await writeFile(path.join(corpus, 'keep-7.md'), `# Keep 7\n\nOnly this source knows ${marker}. ${filler(10)}`);
    expect((await syncNow(s, sourceId)).status).toBe('succeeded');
    // A second source stays, so the table is not simply emptied.
    const other = path.join(tmp, 'other');
    await mkdir(other, { recursive: true });
    await writeFile(path.join(other, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    for (let i = 0; i < 5; i++) await writeFile(path.join(other, `o-${i}.md`), `# Other ${i}\n\n${filler(5)}`);
    const created = await req('/v1/sources', 'POST', { name: 'other', type: 'filesystem', config: { path: other } });
    const otherId = (await created.json()).id;
    expect((await syncNow(s, otherId)).status).toBe('succeeded');
    await settled();
    expect(await filesContaining(dataDir(), marker)).not.toEqual([]);

    expect((await req(`/v1/sources/${sourceId}`, 'DELETE')).status).toBe(204);
    await settled();
    expect(await filesContaining(dataDir(), marker)).toEqual([]);
    expect(await filesContaining(dataDir(), 'Ordinary handbook sentence number 11 about')).toEqual([]);
    expect(await s.vectors.count({ sourceId })).toBe(0);
    expect(await s.vectors.count({ sourceId: otherId })).toBeGreaterThan(0);
  });
});

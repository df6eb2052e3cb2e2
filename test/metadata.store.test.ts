import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.ts';
import { openStores } from '../src/metadata/index.ts';
import type { DocumentUpsert, MetadataStore, NewSource, SqlDriver } from '../src/metadata/interface.ts';
import { migrate, migrations } from '../src/metadata/migrations.ts';
import { PgDriver } from '../src/metadata/pg.ts';
import { PgliteDriver } from '../src/metadata/pglite.ts';
import { SqlMetadataStore } from '../src/metadata/store.ts';
import { binaryCopyData } from '../src/metadata/sql.ts';
import { memoryDriver } from './support/stores.ts';
import { PG_URL, postgresReachable } from './support/services.ts';
import { emptyStats } from '../src/types.ts';


const hasPostgres = await postgresReachable();

const newSource = (over: Partial<NewSource> = {}): NewSource => ({
  name: `src-${randomBytes(4).toString('hex')}`,
  type: 'filesystem',
  config: { path: '/data/docs', nested: { a: [1, 2] } },
  credentialsEncrypted: null,
  schedule: { intervalSeconds: 3600 },
  freshness: { maxAgeDays: 90, rules: [{ match: { pathGlob: 'hr/**' }, maxAgeDays: null }] },
  ...over,
});

const doc = (sourceId: string, externalId: string, over: Partial<DocumentUpsert> = {}): DocumentUpsert => ({
  sourceId,
  externalId,
  title: `Title ${externalId}`,
  url: `https://example.test/${externalId}`,
  path: `folder/${externalId}.md`,
  mimeType: 'text/markdown',
  owner: 'alice@acme.test',
  labels: ['policy', 'hr'],
  lastModified: new Date('2024-03-01T10:20:30.123Z'),
  contentVersion: 'v1',
  contentHash: 'hash-1',
  aclHash: 'acl-1',
  acl: ['user:alice@acme.test', 'group:finance'],
  generation: 1,
  chunkCount: 3,
  status: 'indexed',
  error: null,
  ...over,
});

/**
 * The SQL adapter's own suite: behaviour through the port, plus the few things only visible at the
 * SQL level (migrations, transactions, rows written by older versions), which use the driver.
 */
type Factory = () => Promise<{ store: MetadataStore; driver: SqlDriver; cleanup: () => Promise<void> }>;

function metadataStoreSuite(name: string, factory: Factory) {
  describe(name, () => {
    let store: MetadataStore;
    let driver: SqlDriver;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, driver, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const count = async (table: string, where = 'TRUE', params: unknown[] = []) =>
      Number((await driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, params))[0]!.n);

    it('pings and migrates idempotently', async () => {
      await store.ping();
      await store.migrate();
      await store.migrate();
      const rows = await driver.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      expect(await migrate(driver)).toEqual([]);
    });

    it("writes the audit trail's document index directly, with no pending list to merge in one search's time", async () => {
      const rows = await driver.query<{ reloptions: string[] | null }>(
        `SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = 'audit_log_documents_idx' AND n.nspname = current_schema()`);
      expect(rows[0]?.reloptions).toContain('fastupdate=off');
    });

    it('creates, reads, lists and updates sources', async () => {
      const a = await store.sources.create(newSource({ name: 'alpha', credentialsEncrypted: 'v1:secret' }));
      expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(a).toMatchObject({
        name: 'alpha', type: 'filesystem', status: 'active',
        config: { path: '/data/docs', nested: { a: [1, 2] } },
        schedule: { intervalSeconds: 3600 },
        freshness: { maxAgeDays: 90, rules: [{ match: { pathGlob: 'hr/**' }, maxAgeDays: null }] },
      });
      expect(a.createdAt).toBeInstanceOf(Date);
      expect(a.updatedAt).toBeInstanceOf(Date);
      expect('credentialsEncrypted' in a).toBe(false);

      const b = await store.sources.create(newSource({ name: 'beta', schedule: null, freshness: null }));
      expect(b.schedule).toBeNull();
      expect(b.freshness).toBeNull();

      expect(await store.sources.get(a.id)).toEqual(a);
      expect(await store.sources.get('not-a-uuid')).toBeNull();
      expect((await store.sources.list()).map((s) => s.name)).toEqual(['alpha', 'beta']);

      expect(await store.sources.credentials(a.id)).toBe('v1:secret');
      expect(await store.sources.credentials(b.id)).toBeNull();

      const upd = await store.sources.update(a.id, { name: 'alpha2', schedule: null, status: 'paused', config: { path: '/x' } });
      expect(upd).toMatchObject({ id: a.id, name: 'alpha2', schedule: null, status: 'paused', config: { path: '/x' } });
      expect(upd!.freshness).toEqual(a.freshness);
      expect(upd!.updatedAt.getTime()).toBeGreaterThanOrEqual(a.updatedAt.getTime());
      await store.sources.update(a.id, { credentialsEncrypted: 'v1:other' });
      expect(await store.sources.credentials(a.id)).toBe('v1:other');
      expect(await store.sources.update('missing', { name: 'x' })).toBeNull();

      await expect(store.sources.create(newSource({ name: 'beta' }))).rejects.toMatchObject({ status: 409 });
      const err = await store.sources.update(a.id, { name: 'beta' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).status).toBe(409);
    });

    it('stores, replaces and clears the sync cursor', async () => {
      const s = await store.sources.create(newSource());
      expect(await store.sources.cursor(s.id)).toBeNull();
      await store.sources.setCursor(s.id, 'c1');
      expect(await store.sources.cursor(s.id)).toBe('c1');
      await store.sources.setCursor(s.id, 'c2');
      expect(await store.sources.cursor(s.id)).toBe('c2');
      await store.sources.setCursor(s.id, null);
      expect(await store.sources.cursor(s.id)).toBeNull();
    });

    it('upserts documents idempotently by (source, externalId)', async () => {
      const s = await store.sources.create(newSource());
      const run1 = (await store.runs.start(s.id, 'full')).run;
      const d1 = await store.documents.upsert(doc(s.id, 'a'), run1.id);
      expect(d1).toMatchObject({
        sourceId: s.id, externalId: 'a', title: 'Title a', url: 'https://example.test/a', path: 'folder/a.md',
        mimeType: 'text/markdown', owner: 'alice@acme.test', labels: ['policy', 'hr'], contentVersion: 'v1',
        contentHash: 'hash-1', aclHash: 'acl-1', acl: ['user:alice@acme.test', 'group:finance'], generation: 1,
        chunkCount: 3, status: 'indexed', error: null,
      });
      expect(d1.lastModified).toEqual(new Date('2024-03-01T10:20:30.123Z'));
      expect(d1.indexedAt).toBeInstanceOf(Date);
      expect(typeof d1.generation).toBe('number');

      const again = await store.documents.upsert(doc(s.id, 'a'), run1.id);
      expect(again.id).toBe(d1.id);
      expect(await store.documents.count(s.id)).toBe(1);

      const changed = await store.documents.upsert(
        doc(s.id, 'a', { title: 'New', generation: 2, acl: [], labels: [], url: null, owner: null, error: 'x', status: 'failed' }),
        run1.id);
      expect(changed).toMatchObject({ id: d1.id, title: 'New', generation: 2, acl: [], labels: [], url: null, owner: null, error: 'x', status: 'failed' });
      expect(await store.documents.byExternalId(s.id, 'a')).toEqual(changed);
      expect(await store.documents.byExternalId(s.id, 'zzz')).toBeNull();

      // A caller-chosen id is used on insert only.
      const withId = await store.documents.upsert({ ...doc(s.id, 'b'), id: 'fixed-id' }, run1.id);
      expect(withId.id).toBe('fixed-id');
      const keep = await store.documents.upsert({ ...doc(s.id, 'b'), id: 'other-id' }, run1.id);
      expect(keep.id).toBe('fixed-id');
    });

    it('tracks which documents a run saw and lists the unseen live ones', async () => {
      const s = await store.sources.create(newSource());
      const other = await store.sources.create(newSource());
      const run1 = (await store.runs.start(s.id, 'full')).run;
      for (const id of ['a', 'b', 'c', 'd']) await store.documents.upsert(doc(s.id, id), run1.id);
      await store.documents.upsert(doc(s.id, 'gone', { status: 'deleted' }), run1.id);
      await store.documents.upsert(doc(other.id, 'x'), run1.id);
      expect(await store.documents.unseen(s.id, run1.id)).toEqual([]);
      await store.runs.update(run1.id, { status: 'succeeded' });

      const run2 = (await store.runs.start(s.id, 'full')).run;
      await store.documents.upsert(doc(s.id, 'a', { title: 'changed' }), run2.id);
      await store.documents.touch(s.id, ['b', 'nonexistent'], run2.id);
      await store.documents.touch(s.id, [], run2.id);
      // Touching with another source's id must not mark this source's documents.
      await store.documents.touch(other.id, ['c'], run2.id);
      const unseen = await store.documents.unseen(s.id, run2.id);
      expect(unseen.map((d) => d.externalId).sort()).toEqual(['c', 'd']);
      // Touch leaves content alone.
      expect((await store.documents.byExternalId(s.id, 'b'))!.title).toBe('Title b');

      // A document never seen by any run (last_seen_run NULL) counts as unseen.
      await driver.query(`UPDATE documents SET last_seen_run = NULL WHERE source_id = $1 AND external_id = 'a'`, [s.id]);
      expect((await store.documents.unseen(s.id, run2.id)).map((d) => d.externalId).sort()).toEqual(['a', 'c', 'd']);
    });

    it('gets by ids, pages, counts and deletes documents', async () => {
      const s1 = await store.sources.create(newSource());
      const s2 = await store.sources.create(newSource());
      const run = (await store.runs.start(s1.id, 'full')).run;
      const docs = [];
      for (let i = 0; i < 7; i++) docs.push(await store.documents.upsert(doc(i < 4 ? s1.id : s2.id, `e${i}`), run.id));
      await store.documents.upsert(doc(s1.id, 'dead', { status: 'deleted' }), run.id);

      const picked = await store.documents.byIds([docs[5]!.id, 'unknown', docs[1]!.id, docs[5]!.id]);
      expect(picked.map((d) => d.externalId)).toEqual(['e5', 'e1', 'e5']);
      expect(await store.documents.byIds([])).toEqual([]);
      // Read whole, as every other read gives it: labels, ACL, nulls, and a database clock's
      // microseconds (indexed_at) rounded the same way.
      await driver.query(`UPDATE documents SET indexed_at = indexed_at + interval '123457 microseconds', labels = ARRAY['a,b', 'c"d'], owner = NULL WHERE id = $1`, [docs[1]!.id]);
      expect((await store.documents.byIds([docs[1]!.id]))[0]).toEqual(await store.documents.byExternalId(s1.id, 'e1'));
      expect((await store.documents.byIds([docs[1]!.id]))[0]).toMatchObject({ labels: ['a,b', 'c"d'], owner: null, acl: docs[1]!.acl });

      const byExternal = await store.documents.byExternalIds(s1.id, ['e2', 'e5', 'dead', 'e2', 'unknown']);
      expect(byExternal.map((d) => d.externalId).sort()).toEqual(['dead', 'e2']); // e5 belongs to s2
      expect(await store.documents.byExternalIds(s1.id, [])).toEqual([]);

      expect(await store.documents.count()).toBe(7);
      expect(await store.documents.count(s1.id)).toBe(4);
      expect(await store.documents.count(s2.id)).toBe(3);
      expect(await store.documents.count('nope')).toBe(0);

      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.documents.list({ limit: 3, afterId: after });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page.map((d) => d.id));
        after = page[page.length - 1]!.id;
      }
      expect(seen).toEqual(docs.map((d) => d.id).sort());

      const s1Page = await store.documents.list({ sourceId: s1.id, limit: 100 });
      expect(s1Page.map((d) => d.externalId).sort()).toEqual(['e0', 'e1', 'e2', 'e3']);
      const sorted = s1Page.map((d) => d.id);
      expect(sorted).toEqual([...sorted].sort());
      const rest = await store.documents.list({ sourceId: s1.id, afterId: sorted[1], limit: 100 });
      expect(rest.map((d) => d.id)).toEqual(sorted.slice(2));

      await store.documents.delete(docs[0]!.id);
      expect(await store.documents.byExternalId(s1.id, 'e0')).toBeNull();
      expect(await store.documents.count(s1.id)).toBe(3);
    });

    it('runs go from queued to finished; activeRun follows', async () => {
      const s = await store.sources.create(newSource());
      expect(await store.runs.active(s.id)).toBeNull();
      const r1 = (await store.runs.start(s.id, 'full')).run;
      expect(r1).toMatchObject({ sourceId: s.id, mode: 'full', status: 'queued', startedAt: null, finishedAt: null, error: null, warnings: [] });
      expect(r1.stats).toEqual(emptyStats());
      expect(r1.createdAt).toBeInstanceOf(Date);
      expect((await store.runs.active(s.id))!.id).toBe(r1.id);

      const started = new Date('2024-05-01T00:00:00.500Z');
      const running = await store.runs.update(r1.id, { status: 'running', startedAt: started });
      expect(running).toMatchObject({ status: 'running', startedAt: started });
      expect((await store.runs.active(s.id))!.id).toBe(r1.id);

      const stats = { ...emptyStats(), seen: 10, added: 7, chunksEmbedded: 42, skipped: 1 };
      const finished = new Date('2024-05-01T00:01:00.250Z');
      const done = await store.runs.update(r1.id, { status: 'succeeded', finishedAt: finished, stats, warnings: ['bad acl in /x'] });
      expect(done).toMatchObject({ status: 'succeeded', startedAt: started, finishedAt: finished, stats, warnings: ['bad acl in /x'] });
      expect(await store.runs.get(r1.id)).toEqual(done);
      expect(await store.runs.active(s.id)).toBeNull();

      const r2 = (await store.runs.start(s.id, 'incremental')).run;
      const failed = await store.runs.update(r2.id, { status: 'failed', error: 'boom', mode: 'full' });
      expect(failed).toMatchObject({ status: 'failed', error: 'boom', mode: 'full' });
      const r3 = (await store.runs.start(s.id, 'incremental')).run;
      expect((await store.runs.active(s.id))!.id).toBe(r3.id);

      expect((await store.runs.list(s.id)).map((r) => r.id)).toEqual([r3.id, r2.id, r1.id]);
      expect((await store.runs.list(s.id, 2)).map((r) => r.id)).toEqual([r3.id, r2.id]);
      expect(await store.runs.get('missing')).toBeNull();
      expect(await store.runs.update('missing', { status: 'failed' })).toBeNull();
      expect(await store.runs.update(r3.id, {})).toEqual(await store.runs.get(r3.id));

      // Stats rows written before a counter existed read it as 0.
      await driver.query(`UPDATE runs SET stats = '{"seen": 3}'::jsonb WHERE id = $1`, [r3.id]);
      expect((await store.runs.get(r3.id))!.stats).toEqual({ ...emptyStats(), seen: 3 });
    });

    it('holds at most one queued or running run per source, even when asked at once', async () => {
      const s = await store.sources.create(newSource());
      const other = await store.sources.create(newSource());
      const started = await Promise.all(Array.from({ length: 6 }, (_, i) => store.runs.start(s.id, i % 2 ? 'full' : 'incremental')));
      expect(new Set(started.map((x) => x.run.id)).size).toBe(1);
      expect(started.filter((x) => x.created)).toHaveLength(1);
      expect((await store.runs.start(other.id, 'full')).created).toBe(true);
      const first = started[0]!.run;
      await store.runs.update(first.id, { status: 'running' });
      expect(await store.runs.start(s.id, 'full')).toMatchObject({ created: false, run: { id: first.id } });
      // The database refuses a second active run whatever the caller does.
      const { run: r2 } = await (async () => {
        await store.runs.update(first.id, { status: 'failed' });
        return store.runs.start(s.id, 'full');
      })();
      await expect(store.runs.update(first.id, { status: 'queued' })).rejects.toThrow();
      expect((await store.runs.active(s.id))!.id).toBe(r2.id);
    });

    it('replaces source groups wholesale and looks members up case-insensitively', async () => {
      const s1 = await store.sources.create(newSource());
      const s2 = await store.sources.create(newSource());
      await store.groups.replace(s1.id, [
        { groupId: 'g1', memberEmails: ['Alice@Acme.test', 'bob@acme.test', 'alice@acme.test'] },
        { groupId: 'g2', memberEmails: ['alice@acme.test'] },
        { groupId: 'empty', memberEmails: [] },
      ]);
      await store.groups.replace(s2.id, [{ groupId: 'g9', memberEmails: ['ALICE@acme.test'] }]);

      expect((await store.groups.principalsOf('alice@ACME.test')).sort()).toEqual(
        [`sgroup:${s1.id}/g1`, `sgroup:${s1.id}/g2`, `sgroup:${s2.id}/g9`].sort());
      expect(await store.groups.principalsOf('bob@acme.test')).toEqual([`sgroup:${s1.id}/g1`]);
      expect(await store.groups.principalsOf('nobody@acme.test')).toEqual([]);
      expect(await store.groups.ids(s1.id)).toEqual(['g1', 'g2']);
      expect(await count('source_groups', 'source_id = $1', [s1.id])).toBe(3);

      await store.groups.replace(s1.id, [{ groupId: 'g2', memberEmails: ['bob@acme.test'] }]);
      expect(await store.groups.principalsOf('alice@acme.test')).toEqual([`sgroup:${s2.id}/g9`]);
      expect(await store.groups.principalsOf('BOB@acme.test')).toEqual([`sgroup:${s1.id}/g2`]);

      await store.groups.replace(s1.id, []);
      expect(await store.groups.principalsOf('bob@acme.test')).toEqual([]);
      expect(await store.groups.ids(s1.id)).toEqual([]);
    });

    it('replaceGroups is atomic: a failure keeps the old memberships', async () => {
      const s = await store.sources.create(newSource());
      await store.groups.replace(s.id, [{ groupId: 'g1', memberEmails: ['a@x.test'] }]);
      // The insert fails (NOT NULL) after the delete already ran inside the same transaction.
      await expect(store.groups.replace(s.id, [
        { groupId: 'g2', memberEmails: ['b@x.test'] },
        { groupId: null as unknown as string, memberEmails: ['c@x.test'] },
      ])).rejects.toThrow();
      expect(await store.groups.principalsOf('a@x.test')).toEqual([`sgroup:${s.id}/g1`]);
      expect(await store.groups.principalsOf('b@x.test')).toEqual([]);
      await expect(driver.transaction(async (tx) => {
        await tx.query('DELETE FROM source_groups WHERE source_id = $1', [s.id]);
        throw new Error('abort');
      })).rejects.toThrow('abort');
      expect(await store.groups.principalsOf('a@x.test')).toEqual([`sgroup:${s.id}/g1`]);
    });

    it('round-trips bytea byte for byte, as a parameter and as a result', async () => {
      const every = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
      const offset = new Uint8Array(Uint8Array.from([9, 0, 255, 16, 1]).buffer, 1, 3);
      const rows = await driver.query<{ a: Uint8Array; b: Uint8Array; c: Uint8Array; n: number }>(
        "SELECT $1::bytea AS a, $2::bytea AS b, ''::bytea AS c, length($1::bytea) AS n", [every, offset]);
      expect(rows[0]!.n).toBe(512);
      expect(rows[0]!.a).toBeInstanceOf(Uint8Array);
      expect([...rows[0]!.a]).toEqual([...every]);
      expect([...rows[0]!.b]).toEqual([0, 255, 16]);
      expect(rows[0]!.c.length).toBe(0);
    });

    it('round-trips embeddings exactly as float32 and never overwrites', async () => {
      const src = await store.sources.create(newSource({ name: 'embedding-owner' }));
      const own = { sourceId: src.id, documentId: 'doc-1' };
      const f = Math.fround;
      const v1 = [f(0.1), f(-0.25), f(1e-30), f(3.4e38), 0, f(-1.5), f(Math.PI)];
      const v2 = Array.from({ length: 384 }, (_, i) => f(Math.sin(i) / (i + 1)));
      await store.embeddings.put('m1', [{ textHash: 'h1', vector: v1, ...own }, { textHash: 'h2', vector: v2, ...own }]);
      const got = await store.embeddings.get('m1', ['h1', 'h2', 'missing', 'h1']);
      expect(got.size).toBe(2);
      expect(got.get('h1')).toEqual(v1);
      expect(got.get('h2')).toEqual(v2);
      expect((await store.embeddings.get('m2', ['h1'])).size).toBe(0);
      expect((await store.embeddings.get('m1', [])).size).toBe(0);

      // Doubles come back rounded to float32.
      await store.embeddings.put('m2', [{ textHash: 'h1', vector: [0.1, 1 / 3], ...own }]);
      expect((await store.embeddings.get('m2', ['h1'])).get('h1')).toEqual([f(0.1), f(1 / 3)]);

      await store.embeddings.put('m1', [{ textHash: 'h1', vector: [9, 9], ...own }]);
      expect((await store.embeddings.get('m1', ['h1'])).get('h1')).toEqual(v1);
      // A batch that meets a cached vector still stores its new ones (PGlite's COPY cannot skip
      // the conflict, so the batch is written again by INSERT); within a batch the first one wins.
      await store.embeddings.put('m1', [{ textHash: 'h1', vector: [7], ...own }, { textHash: 'h3', vector: v2, ...own }]);
      expect((await store.embeddings.get('m1', ['h1'])).get('h1')).toEqual(v1);
      expect((await store.embeddings.get('m1', ['h3'])).get('h3')).toEqual(v2);
      await store.embeddings.put('m3', [{ textHash: 'd', vector: [1], ...own }, { textHash: 'd', vector: [2], ...own }]);
      expect((await store.embeddings.get('m3', ['d'])).get('d')).toEqual([1]);
      // Owners in any script, and a source that does not exist is refused, not stored unowned.
      await store.embeddings.put('m3', [{ textHash: 'u', vector: [3], sourceId: src.id, documentId: 'döc—東京 🙂' }]);
      expect((await store.embeddings.get('m3', ['u'])).get('u')).toEqual([3]);
      await expect(store.embeddings.put('m3', [{ textHash: 'v', vector: [4], sourceId: 'no-such-source', documentId: 'x' }])).rejects.toThrow();
      expect((await store.embeddings.get('m3', ['v'])).size).toBe(0);

      const many = Array.from({ length: 1203 }, (_, i) => ({ textHash: `k${i}`, vector: [i, -i, f(i / 7)], ...own }));
      await store.embeddings.put('big', many);
      await store.embeddings.put('big', []);
      const back = await store.embeddings.get('big', many.map((m) => m.textHash));
      expect(back.size).toBe(1203);
      expect(back.get('k1202')).toEqual([1202, -1202, f(1202 / 7)]);
    });

    it('forgets the vectors of a deleted or rewritten document, and of a deleted source', async () => {
      const a = await store.sources.create(newSource({ name: 'forget-a' }));
      const b = await store.sources.create(newSource({ name: 'forget-b' }));
      const put = (model: string, textHash: string, sourceId: string, documentId: string) =>
        store.embeddings.put(model, [{ textHash, vector: [1, 2], sourceId, documentId }]);
      await put('m', 'x1', a.id, 'd1');
      await put('m', 'x2', a.id, 'd1');
      await put('m2', 'x1', a.id, 'd1');
      await put('m', 'y1', a.id, 'd2');
      await put('m', 'z1', b.id, 'd3');
      // Shared text keeps its first owner.
      await put('m', 'x1', b.id, 'd3');
      const has = async (model: string, h: string) => (await store.embeddings.get(model, [h])).has(h);

      // A rewritten document keeps the vectors of its current chunks, in every model.
      await store.embeddings.forget('d1', ['x1']);
      expect([await has('m', 'x1'), await has('m2', 'x1'), await has('m', 'x2'), await has('m', 'y1')]).toEqual([true, true, false, true]);
      // A deleted document keeps nothing; other documents keep theirs.
      await store.embeddings.forget('d1');
      expect([await has('m', 'x1'), await has('m2', 'x1'), await has('m', 'y1'), await has('m', 'z1')]).toEqual([false, false, true, true]);
      await store.embeddings.forget('no-such-document');
      // Deleting a source takes what its documents wrote.
      await store.sources.delete(a.id);
      expect([await has('m', 'y1'), await has('m', 'z1')]).toEqual([false, true]);
    });

    it('keeps the embedding cache out of the write-ahead log, and only it', async () => {
      const persistence = await driver.query<{ relname: string; relpersistence: string }>(
        `SELECT relname, relpersistence FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace`);
      const unlogged = persistence.filter((r) => r.relpersistence === 'u').map((r) => r.relname);
      expect(unlogged).toEqual(['embeddings']);
      expect(persistence.length).toBeGreaterThan(5);
    });

    it('keeps a cached vector inside its row, uncompressed, and a page-sized one out of line', async () => {
      const src = await store.sources.create(newSource({ name: 'toast-owner' }));
      const own = { sourceId: src.id, documentId: 'doc-toast' };
      const toastRows = async () => {
        const [{ toast }] = await driver.query<{ toast: string }>(
          `SELECT reltoastrelid::regclass::text AS toast FROM pg_class WHERE oid = 'embeddings'::regclass`) as [{ toast: string }];
        return Number((await driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${toast}`))[0]!.n);
      };
      const before = await toastRows();
      // 512 float32 values (2 KB) put the row past the 2 KB threshold at which PostgreSQL would compress and move it.
      const v512 = Array.from({ length: 512 }, (_, i) => Math.fround(Math.sin(i + 1)));
      await store.embeddings.put('toast-512', [{ textHash: 'a', vector: v512, ...own }]);
      expect(await toastRows()).toBe(before);
      const [stored] = await driver.query<{ bytes: number }>(`SELECT pg_column_size(vector) AS bytes FROM embeddings WHERE model = 'toast-512'`);
      expect(Number(stored!.bytes)).toBeGreaterThanOrEqual(2048);
      // 4,096 dimensions (16 KB) cannot fit a page: out of line, uncompressed, and read back exactly.
      const v4096 = Array.from({ length: 4096 }, (_, i) => Math.fround(Math.cos(i)));
      await store.embeddings.put('toast-4096', [{ textHash: 'b', vector: v4096, ...own }]);
      expect(await toastRows()).toBeGreaterThan(before);
      expect((await store.embeddings.get('toast-512', ['a'])).get('a')).toEqual(v512);
      expect((await store.embeddings.get('toast-4096', ['b'])).get('b')).toEqual(v4096);
      const [attr] = await driver.query<{ attstorage: string }>(
        `SELECT attstorage FROM pg_attribute WHERE attrelid = 'embeddings'::regclass AND attname = 'vector'`);
      expect(attr!.attstorage).toBe('e');
    });

    it('writes and searches audit records', async () => {
      const t = (s: string) => new Date(`2024-06-01T${s}Z`);
      await store.audit.append({ at: t('10:00:00.000'), user: 'alice@acme.test', agent: null, action: 'search', query: 'q1', documentIds: ['d1', 'd2'], requestId: 'r1' });
      await store.audit.append({ at: t('11:00:00.000'), user: 'bob@acme.test', agent: 'agent-1', action: 'search', query: 'q2', documentIds: [], requestId: null });
      await store.audit.append({ at: t('12:00:00.000'), user: 'alice@acme.test', agent: 'agent-1', action: 'search', query: 'q3', documentIds: ['d3'], requestId: null });
      await store.audit.append({ user: null, agent: null, action: 'source.delete', query: null, documentIds: [], requestId: null });

      const all = await store.audit.search({});
      expect(all).toHaveLength(4);
      expect(all[0]!.action).toBe('source.delete');
      expect(Date.now() - all[0]!.at.getTime()).toBeLessThan(60_000);
      expect(all.slice(1).map((a) => a.query)).toEqual(['q3', 'q2', 'q1']);
      expect(all[3]).toMatchObject({ user: 'alice@acme.test', agent: null, documentIds: ['d1', 'd2'], requestId: 'r1', at: t('10:00:00.000') });
      expect(all[3]!.id).toMatch(/^[0-9a-f-]{36}$/);

      expect((await store.audit.search({ user: 'ALICE@acme.test' })).map((a) => a.query)).toEqual(['q3', 'q1']);
      expect((await store.audit.search({ agent: 'agent-1' })).map((a) => a.query)).toEqual(['q3', 'q2']);
      expect((await store.audit.search({ user: 'alice@acme.test', agent: 'agent-1' })).map((a) => a.query)).toEqual(['q3']);
      expect((await store.audit.search({ from: t('11:00:00.000'), to: t('12:00:00.000') })).map((a) => a.query)).toEqual(['q3', 'q2']);
      expect((await store.audit.search({ to: t('10:30:00.000') })).map((a) => a.query)).toEqual(['q1']);
      expect((await store.audit.search({ limit: 2 })).length).toBe(2);
    });

    it('caps audit search at 100 by default and 1000 at most', async () => {
      // Straight into the table (hashes are not what this test is about); newer records have higher seq.
      await driver.query(
        `INSERT INTO audit_log (seq, id, at, actor, action, outcome, document_ids, prev_hash, hash)
         SELECT 2000 - i, 'bulk-' || i, now() - (i || ' seconds')::interval, 'u@x.test', 'search', 'ok', '{}', '', '' FROM generate_series(1, 1005) AS i`);
      expect(await store.audit.search({})).toHaveLength(100);
      expect(await store.audit.search({ limit: 5000 })).toHaveLength(1000);
      expect(await store.audit.search({ limit: 0 })).toHaveLength(1);
      const top = await store.audit.search({ limit: 3 });
      expect(top.map((a) => a.id)).toEqual(['bulk-1', 'bulk-2', 'bulk-3']);
    });

    it('creates, finds, lists and deletes agents', async () => {
      const a = await store.agents.create('helper', 'hash-a', ['s1', 's2']);
      expect(a).toMatchObject({ name: 'helper', sourceIds: ['s1', 's2'] });
      expect(a.createdAt).toBeInstanceOf(Date);
      const b = await store.agents.create('other', 'hash-b', []);
      expect(await store.agents.byKeyHash('hash-a')).toEqual(a);
      expect(await store.agents.byKeyHash('nope')).toBeNull();
      expect((await store.agents.list()).map((x) => x.id)).toEqual([a.id, b.id]);
      await expect(store.agents.create('dup', 'hash-a', [])).rejects.toMatchObject({ status: 409 });
      expect(await store.agents.delete(a.id)).toBe(true);
      expect(await store.agents.delete(a.id)).toBe(false);
      // Revoked keys are kept (so their use is recognised and audited as revoked), marked as such.
      expect((await store.agents.byKeyHash('hash-a'))?.revokedAt).toBeInstanceOf(Date);
      expect((await store.agents.setExpiry(b.id, new Date('2030-01-01T00:00:00Z')))?.expiresAt).toEqual(new Date('2030-01-01T00:00:00Z'));
      expect(await store.agents.setExpiry('nope', null)).toBeNull();
    });

    it('deleteSource removes everything that belongs to the source and nothing else', async () => {
      const s = await store.sources.create(newSource());
      const keep = await store.sources.create(newSource());
      for (const src of [s, keep]) {
        const run = (await store.runs.start(src.id, 'full')).run;
        await store.documents.upsert(doc(src.id, 'a'), run.id);
        await store.documents.upsert(doc(src.id, 'b'), run.id);
        await store.sources.setCursor(src.id, 'cursor');
        await store.groups.replace(src.id, [{ groupId: 'g', memberEmails: ['a@x.test'] }]);
      }
      await store.sources.delete(s.id);
      expect(await store.sources.get(s.id)).toBeNull();
      for (const table of ['documents', 'runs', 'sync_cursors', 'source_groups']) {
        expect(await count(table, 'source_id = $1', [s.id])).toBe(0);
        expect(await count(table, 'source_id = $1', [keep.id])).toBeGreaterThan(0);
      }
      expect(await store.groups.principalsOf('a@x.test')).toEqual([`sgroup:${keep.id}/g`]);
      await store.sources.delete(s.id); // already gone: no error
    });

    it('rolls back a failed transaction, and nested failures only undo the inner part', async () => {
      const s = await store.sources.create(newSource({ name: 'outer' }));
      await expect(driver.transaction(async (tx) => {
        await tx.query(`UPDATE sources SET name = 'renamed' WHERE id = $1`, [s.id]);
        throw new Error('nope');
      })).rejects.toThrow('nope');
      expect((await store.sources.get(s.id))!.name).toBe('outer');

      await driver.transaction(async (tx) => {
        await tx.query(`UPDATE sources SET name = 'kept' WHERE id = $1`, [s.id]);
        await expect(tx.transaction(async (inner) => {
          await inner.query(`UPDATE sources SET name = 'lost' WHERE id = $1`, [s.id]);
          throw new Error('inner');
        })).rejects.toThrow('inner');
      });
      expect((await store.sources.get(s.id))!.name).toBe('kept');
    });
  });
}

// ---- PGlite (in memory) -----------------------------------------------------------------------------

metadataStoreSuite('SqlMetadataStore on PGlite', async () => {
  const driver = await memoryDriver();
  const store = new SqlMetadataStore(driver);
  return { store, driver, cleanup: () => store.close() };
});

describe('PgliteDriver', () => {
  it('a query issued during a transaction waits for it instead of joining it', async () => {
    const driver = await memoryDriver();
    const store = new SqlMetadataStore(driver);
    try {
      const s = await store.sources.create(newSource({ name: 'before' }));
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let entered!: () => void;
      const inside = new Promise<void>((r) => { entered = r; });
      const tx = driver.transaction(async (t) => {
        await t.query(`UPDATE sources SET name = 'during' WHERE id = $1`, [s.id]);
        entered();
        await gate;
        throw new Error('rollback');
      });
      await inside;
      // Issued while the transaction is open: if it ran inside it, it would see 'during'.
      const outside = store.sources.get(s.id);
      let settled = false;
      void outside.then(() => { settled = true; });
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false);
      release();
      await expect(tx).rejects.toThrow('rollback');
      expect((await outside)!.name).toBe('before');
    } finally {
      await store.close();
    }
  });

  it('copies rows in binary: text in any script, bytes as they are, NULL', async () => {
    const driver = await memoryDriver();
    try {
      await driver.query('CREATE TABLE copied (t text, b bytea, n text)');
      const bytes = Uint8Array.from([0, 1, 2, 255, 92, 120]);
      await driver.copyBinary!('copied', ['t', 'b', 'n'], binaryCopyData([['döc—東京 🙂', bytes, null], ['', new Uint8Array(0), 'x']]));
      const rows = await driver.query<{ t: string; b: Uint8Array; n: string | null }>('SELECT t, b, n FROM copied ORDER BY t DESC');
      expect(rows.map((r) => [r.t, [...r.b], r.n])).toEqual([['döc—東京 🙂', [...bytes], null], ['', [], 'x']]);
    } finally {
      await driver.close();
    }
  });

  it('never zero-fills a new WAL segment on the thread it shares with the API', async () => {
    const driver = await memoryDriver();
    try {
      expect((await driver.query<{ wal_init_zero: string }>('SHOW wal_init_zero'))[0]!.wal_init_zero).toBe('off');
    } finally {
      await driver.close();
    }
  });

  it('memory stores for tests are independent and empty', async () => {
    const a = new SqlMetadataStore(await memoryDriver());
    const b = new SqlMetadataStore(await memoryDriver());
    try {
      await a.sources.create(newSource({ name: 'only-in-a' }));
      expect(await a.sources.list()).toHaveLength(1);
      expect(await b.sources.list()).toHaveLength(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('openStores without DATABASE_URL persists in <dataDir>/pglite', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'clearance-meta-'));
    try {
      const first = (await openStores({ dataDir, DATABASE_URL: undefined })).metadata;
      expect(first.kind).toBe('pglite');
      const s = await first.sources.create(newSource({ name: 'persisted', credentialsEncrypted: 'v1:x' }));
      await first.close();
      await expect(fs.stat(path.join(dataDir, 'pglite'))).resolves.toBeTruthy();
      const second = (await openStores({ dataDir, DATABASE_URL: undefined })).metadata;
      try {
        expect((await second.sources.get(s.id))!.name).toBe('persisted');
        expect(await second.sources.credentials(s.id)).toBe('v1:x');
      } finally {
        await second.close();
      }
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('openStores with an unreachable DATABASE_URL', () => {
  it('fails with one line naming DATABASE_URL and no password', async () => {
    const err = await openStores({ dataDir: os.tmpdir(), DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:1/db' })
      .catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^DATABASE_URL: /);
    expect(msg).toContain('127.0.0.1:1');
    expect(msg).not.toContain('hunter2');
    expect(msg).not.toContain('\n');
  });
});

// ---- Postgres (one random schema per test) ----------------------------------------------------------

describe.runIf(hasPostgres)('on Postgres', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  afterAll(() => admin.end());

  const freshSchema = async () => {
    const schema = `clr_meta_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    return { schema, drop: () => admin.query(`DROP SCHEMA ${schema} CASCADE`).then(() => undefined) };
  };

  metadataStoreSuite('SqlMetadataStore on Postgres', async () => {
    const { schema, drop } = await freshSchema();
    const driver = new PgDriver({ connectionString: PG_URL, schema, max: 3 });
    const store = new SqlMetadataStore(driver);
    await store.migrate();
    return { store, driver, cleanup: async () => { await store.close(); await drop(); } };
  });

  it('two processes migrating the same fresh schema at once both succeed, once', async () => {
    const { schema, drop } = await freshSchema();
    const drivers = [0, 1, 2].map(() => new PgDriver({ connectionString: PG_URL, schema, max: 2 }));
    const stores = drivers.map((d) => new SqlMetadataStore(d));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const rows = await drivers[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      const applied = await Promise.all(drivers.map((d) => migrate(d)));
      expect(applied).toEqual([[], [], []]);
      // Tables really landed in the test schema, not in public.
      const t = await admin.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'documents'`, [schema]);
      expect(t.rows[0].n).toBe(1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await drop();
    }
  });

  it('PgDriver rejects schema names that would need quoting', () => {
    expect(() => new PgDriver({ connectionString: PG_URL, schema: 'x; DROP TABLE y' })).toThrow(/Invalid schema/);
  });

  it('PgliteDriver and PgDriver return the same shapes for the same row', async () => {
    const { schema, drop } = await freshSchema();
    const pgStore = new SqlMetadataStore(new PgDriver({ connectionString: PG_URL, schema }));
    const liteStore = new SqlMetadataStore(await PgliteDriver.open());
    try {
      await pgStore.migrate();
      await liteStore.migrate();
      const shapes = [];
      for (const st of [pgStore, liteStore]) {
        const s = await st.sources.create(newSource({ name: 'same' }));
        const { run } = await st.runs.start(s.id, 'full');
        const d = await st.documents.upsert({ ...doc(s.id, 'a'), id: 'doc-1' }, run.id);
        shapes.push({ ...d, sourceId: 'x', indexedAt: typeof d.indexedAt, lastModified: d.lastModified.toISOString() });
      }
      expect(shapes[0]).toEqual(shapes[1]);
    } finally {
      await pgStore.close();
      await liteStore.close();
      await drop();
    }
  });
});

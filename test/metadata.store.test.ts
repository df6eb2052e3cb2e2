import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.ts';
import { createMemoryMetadataStore, createMetadataStore } from '../src/metadata/index.ts';
import type { DocumentUpsert, MetadataStore, NewSource } from '../src/metadata/interface.ts';
import { migrate, migrations } from '../src/metadata/migrations.ts';
import { PgDriver } from '../src/metadata/pg.ts';
import { PgliteDriver } from '../src/metadata/pglite.ts';
import { SqlMetadataStore } from '../src/metadata/store.ts';
import { emptyStats } from '../src/types.ts';

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}
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

type Factory = () => Promise<{ store: MetadataStore; cleanup: () => Promise<void> }>;

function metadataStoreSuite(name: string, factory: Factory) {
  describe(name, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const count = async (table: string, where = 'TRUE', params: unknown[] = []) =>
      Number((await store.driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, params))[0]!.n);

    it('pings and migrates idempotently', async () => {
      await store.ping();
      await store.migrate();
      await store.migrate();
      const rows = await store.driver.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      expect(await migrate(store.driver)).toEqual([]);
    });

    it('creates, reads, lists and updates sources', async () => {
      const a = await store.createSource(newSource({ name: 'alpha', credentialsEncrypted: 'v1:secret' }));
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

      const b = await store.createSource(newSource({ name: 'beta', schedule: null, freshness: null }));
      expect(b.schedule).toBeNull();
      expect(b.freshness).toBeNull();

      expect(await store.getSource(a.id)).toEqual(a);
      expect(await store.getSource('not-a-uuid')).toBeNull();
      expect((await store.listSources()).map((s) => s.name)).toEqual(['alpha', 'beta']);

      expect(await store.getSourceCredentials(a.id)).toBe('v1:secret');
      expect(await store.getSourceCredentials(b.id)).toBeNull();

      const upd = await store.updateSource(a.id, { name: 'alpha2', schedule: null, status: 'paused', config: { path: '/x' } });
      expect(upd).toMatchObject({ id: a.id, name: 'alpha2', schedule: null, status: 'paused', config: { path: '/x' } });
      expect(upd!.freshness).toEqual(a.freshness);
      expect(upd!.updatedAt.getTime()).toBeGreaterThanOrEqual(a.updatedAt.getTime());
      await store.updateSource(a.id, { credentialsEncrypted: 'v1:other' });
      expect(await store.getSourceCredentials(a.id)).toBe('v1:other');
      expect(await store.updateSource('missing', { name: 'x' })).toBeNull();

      await expect(store.createSource(newSource({ name: 'beta' }))).rejects.toMatchObject({ status: 409 });
      const err = await store.updateSource(a.id, { name: 'beta' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).status).toBe(409);
    });

    it('stores, replaces and clears the sync cursor', async () => {
      const s = await store.createSource(newSource());
      expect(await store.getCursor(s.id)).toBeNull();
      await store.setCursor(s.id, 'c1');
      expect(await store.getCursor(s.id)).toBe('c1');
      await store.setCursor(s.id, 'c2');
      expect(await store.getCursor(s.id)).toBe('c2');
      await store.setCursor(s.id, null);
      expect(await store.getCursor(s.id)).toBeNull();
    });

    it('upserts documents idempotently by (source, externalId)', async () => {
      const s = await store.createSource(newSource());
      const run1 = await store.createRun(s.id, 'full');
      const d1 = await store.upsertDocument(doc(s.id, 'a'), run1.id);
      expect(d1).toMatchObject({
        sourceId: s.id, externalId: 'a', title: 'Title a', url: 'https://example.test/a', path: 'folder/a.md',
        mimeType: 'text/markdown', owner: 'alice@acme.test', labels: ['policy', 'hr'], contentVersion: 'v1',
        contentHash: 'hash-1', aclHash: 'acl-1', acl: ['user:alice@acme.test', 'group:finance'], generation: 1,
        chunkCount: 3, status: 'indexed', error: null,
      });
      expect(d1.lastModified).toEqual(new Date('2024-03-01T10:20:30.123Z'));
      expect(d1.indexedAt).toBeInstanceOf(Date);
      expect(typeof d1.generation).toBe('number');

      const again = await store.upsertDocument(doc(s.id, 'a'), run1.id);
      expect(again.id).toBe(d1.id);
      expect(await store.countDocuments(s.id)).toBe(1);

      const changed = await store.upsertDocument(
        doc(s.id, 'a', { title: 'New', generation: 2, acl: [], labels: [], url: null, owner: null, error: 'x', status: 'failed' }),
        run1.id);
      expect(changed).toMatchObject({ id: d1.id, title: 'New', generation: 2, acl: [], labels: [], url: null, owner: null, error: 'x', status: 'failed' });
      expect(await store.getDocument(s.id, 'a')).toEqual(changed);
      expect(await store.getDocument(s.id, 'zzz')).toBeNull();

      // A caller-chosen id is used on insert only.
      const withId = await store.upsertDocument({ ...doc(s.id, 'b'), id: 'fixed-id' }, run1.id);
      expect(withId.id).toBe('fixed-id');
      const keep = await store.upsertDocument({ ...doc(s.id, 'b'), id: 'other-id' }, run1.id);
      expect(keep.id).toBe('fixed-id');
    });

    it('tracks which documents a run saw and lists the unseen live ones', async () => {
      const s = await store.createSource(newSource());
      const other = await store.createSource(newSource());
      const run1 = await store.createRun(s.id, 'full');
      for (const id of ['a', 'b', 'c', 'd']) await store.upsertDocument(doc(s.id, id), run1.id);
      await store.upsertDocument(doc(s.id, 'gone', { status: 'deleted' }), run1.id);
      await store.upsertDocument(doc(other.id, 'x'), run1.id);
      expect(await store.listUnseenDocuments(s.id, run1.id)).toEqual([]);

      const run2 = await store.createRun(s.id, 'full');
      await store.upsertDocument(doc(s.id, 'a', { title: 'changed' }), run2.id);
      await store.touchDocuments(s.id, ['b', 'nonexistent'], run2.id);
      await store.touchDocuments(s.id, [], run2.id);
      // Touching with another source's id must not mark this source's documents.
      await store.touchDocuments(other.id, ['c'], run2.id);
      const unseen = await store.listUnseenDocuments(s.id, run2.id);
      expect(unseen.map((d) => d.externalId).sort()).toEqual(['c', 'd']);
      // Touch leaves content alone.
      expect((await store.getDocument(s.id, 'b'))!.title).toBe('Title b');

      // A document never seen by any run (last_seen_run NULL) counts as unseen.
      await store.driver.query(`UPDATE documents SET last_seen_run = NULL WHERE source_id = $1 AND external_id = 'a'`, [s.id]);
      expect((await store.listUnseenDocuments(s.id, run2.id)).map((d) => d.externalId).sort()).toEqual(['a', 'c', 'd']);
    });

    it('gets by ids, pages, counts and deletes documents', async () => {
      const s1 = await store.createSource(newSource());
      const s2 = await store.createSource(newSource());
      const run = await store.createRun(s1.id, 'full');
      const docs = [];
      for (let i = 0; i < 7; i++) docs.push(await store.upsertDocument(doc(i < 4 ? s1.id : s2.id, `e${i}`), run.id));
      await store.upsertDocument(doc(s1.id, 'dead', { status: 'deleted' }), run.id);

      const picked = await store.getDocumentsByIds([docs[5]!.id, 'unknown', docs[1]!.id, docs[5]!.id]);
      expect(picked.map((d) => d.externalId)).toEqual(['e5', 'e1', 'e5']);
      expect(await store.getDocumentsByIds([])).toEqual([]);

      const byExternal = await store.getDocumentsByExternalIds(s1.id, ['e2', 'e5', 'dead', 'e2', 'unknown']);
      expect(byExternal.map((d) => d.externalId).sort()).toEqual(['dead', 'e2']); // e5 belongs to s2
      expect(await store.getDocumentsByExternalIds(s1.id, [])).toEqual([]);

      expect(await store.countDocuments()).toBe(7);
      expect(await store.countDocuments(s1.id)).toBe(4);
      expect(await store.countDocuments(s2.id)).toBe(3);
      expect(await store.countDocuments('nope')).toBe(0);

      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.listDocuments({ limit: 3, afterId: after });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page.map((d) => d.id));
        after = page[page.length - 1]!.id;
      }
      expect(seen).toEqual(docs.map((d) => d.id).sort());

      const s1Page = await store.listDocuments({ sourceId: s1.id, limit: 100 });
      expect(s1Page.map((d) => d.externalId).sort()).toEqual(['e0', 'e1', 'e2', 'e3']);
      const sorted = s1Page.map((d) => d.id);
      expect(sorted).toEqual([...sorted].sort());
      const rest = await store.listDocuments({ sourceId: s1.id, afterId: sorted[1], limit: 100 });
      expect(rest.map((d) => d.id)).toEqual(sorted.slice(2));

      await store.deleteDocument(docs[0]!.id);
      expect(await store.getDocument(s1.id, 'e0')).toBeNull();
      expect(await store.countDocuments(s1.id)).toBe(3);
    });

    it('runs go from queued to finished; activeRun follows', async () => {
      const s = await store.createSource(newSource());
      expect(await store.activeRun(s.id)).toBeNull();
      const r1 = await store.createRun(s.id, 'full');
      expect(r1).toMatchObject({ sourceId: s.id, mode: 'full', status: 'queued', startedAt: null, finishedAt: null, error: null, warnings: [] });
      expect(r1.stats).toEqual(emptyStats());
      expect(r1.createdAt).toBeInstanceOf(Date);
      expect((await store.activeRun(s.id))!.id).toBe(r1.id);

      const started = new Date('2024-05-01T00:00:00.500Z');
      const running = await store.updateRun(r1.id, { status: 'running', startedAt: started });
      expect(running).toMatchObject({ status: 'running', startedAt: started });
      expect((await store.activeRun(s.id))!.id).toBe(r1.id);

      const stats = { ...emptyStats(), seen: 10, added: 7, chunksEmbedded: 42, skipped: 1 };
      const finished = new Date('2024-05-01T00:01:00.250Z');
      const done = await store.updateRun(r1.id, { status: 'succeeded', finishedAt: finished, stats, warnings: ['bad acl in /x'] });
      expect(done).toMatchObject({ status: 'succeeded', startedAt: started, finishedAt: finished, stats, warnings: ['bad acl in /x'] });
      expect(await store.getRun(r1.id)).toEqual(done);
      expect(await store.activeRun(s.id)).toBeNull();

      const r2 = await store.createRun(s.id, 'incremental');
      const failed = await store.updateRun(r2.id, { status: 'failed', error: 'boom', mode: 'full' });
      expect(failed).toMatchObject({ status: 'failed', error: 'boom', mode: 'full' });
      const r3 = await store.createRun(s.id, 'incremental');
      expect((await store.activeRun(s.id))!.id).toBe(r3.id);

      expect((await store.listRuns(s.id)).map((r) => r.id)).toEqual([r3.id, r2.id, r1.id]);
      expect((await store.listRuns(s.id, 2)).map((r) => r.id)).toEqual([r3.id, r2.id]);
      expect(await store.getRun('missing')).toBeNull();
      expect(await store.updateRun('missing', { status: 'failed' })).toBeNull();
      expect(await store.updateRun(r3.id, {})).toEqual(await store.getRun(r3.id));

      // Stats rows written before a counter existed read it as 0.
      await store.driver.query(`UPDATE runs SET stats = '{"seen": 3}'::jsonb WHERE id = $1`, [r3.id]);
      expect((await store.getRun(r3.id))!.stats).toEqual({ ...emptyStats(), seen: 3 });
    });

    it('replaces source groups wholesale and looks members up case-insensitively', async () => {
      const s1 = await store.createSource(newSource());
      const s2 = await store.createSource(newSource());
      await store.replaceGroups(s1.id, [
        { groupId: 'g1', memberEmails: ['Alice@Acme.test', 'bob@acme.test', 'alice@acme.test'] },
        { groupId: 'g2', memberEmails: ['alice@acme.test'] },
        { groupId: 'empty', memberEmails: [] },
      ]);
      await store.replaceGroups(s2.id, [{ groupId: 'g9', memberEmails: ['ALICE@acme.test'] }]);

      expect((await store.sourceGroupPrincipals('alice@ACME.test')).sort()).toEqual(
        [`sgroup:${s1.id}/g1`, `sgroup:${s1.id}/g2`, `sgroup:${s2.id}/g9`].sort());
      expect(await store.sourceGroupPrincipals('bob@acme.test')).toEqual([`sgroup:${s1.id}/g1`]);
      expect(await store.sourceGroupPrincipals('nobody@acme.test')).toEqual([]);
      expect(await store.listSourceGroupIds(s1.id)).toEqual(['g1', 'g2']);
      expect(await count('source_groups', 'source_id = $1', [s1.id])).toBe(3);

      await store.replaceGroups(s1.id, [{ groupId: 'g2', memberEmails: ['bob@acme.test'] }]);
      expect(await store.sourceGroupPrincipals('alice@acme.test')).toEqual([`sgroup:${s2.id}/g9`]);
      expect(await store.sourceGroupPrincipals('BOB@acme.test')).toEqual([`sgroup:${s1.id}/g2`]);

      await store.replaceGroups(s1.id, []);
      expect(await store.sourceGroupPrincipals('bob@acme.test')).toEqual([]);
      expect(await store.listSourceGroupIds(s1.id)).toEqual([]);
    });

    it('replaceGroups is atomic: a failure keeps the old memberships', async () => {
      const s = await store.createSource(newSource());
      await store.replaceGroups(s.id, [{ groupId: 'g1', memberEmails: ['a@x.test'] }]);
      // The insert fails (NOT NULL) after the delete already ran inside the same transaction.
      await expect(store.replaceGroups(s.id, [
        { groupId: 'g2', memberEmails: ['b@x.test'] },
        { groupId: null as unknown as string, memberEmails: ['c@x.test'] },
      ])).rejects.toThrow();
      expect(await store.sourceGroupPrincipals('a@x.test')).toEqual([`sgroup:${s.id}/g1`]);
      expect(await store.sourceGroupPrincipals('b@x.test')).toEqual([]);
      await expect(store.driver.transaction(async (tx) => {
        await tx.query('DELETE FROM source_groups WHERE source_id = $1', [s.id]);
        throw new Error('abort');
      })).rejects.toThrow('abort');
      expect(await store.sourceGroupPrincipals('a@x.test')).toEqual([`sgroup:${s.id}/g1`]);
    });

    it('round-trips embeddings exactly as float32 and never overwrites', async () => {
      const f = Math.fround;
      const v1 = [f(0.1), f(-0.25), f(1e-30), f(3.4e38), 0, f(-1.5), f(Math.PI)];
      const v2 = Array.from({ length: 384 }, (_, i) => f(Math.sin(i) / (i + 1)));
      await store.putEmbeddings('m1', [{ textHash: 'h1', vector: v1 }, { textHash: 'h2', vector: v2 }]);
      const got = await store.getEmbeddings('m1', ['h1', 'h2', 'missing', 'h1']);
      expect(got.size).toBe(2);
      expect(got.get('h1')).toEqual(v1);
      expect(got.get('h2')).toEqual(v2);
      expect((await store.getEmbeddings('m2', ['h1'])).size).toBe(0);
      expect((await store.getEmbeddings('m1', [])).size).toBe(0);

      // Doubles come back rounded to float32.
      await store.putEmbeddings('m2', [{ textHash: 'h1', vector: [0.1, 1 / 3] }]);
      expect((await store.getEmbeddings('m2', ['h1'])).get('h1')).toEqual([f(0.1), f(1 / 3)]);

      await store.putEmbeddings('m1', [{ textHash: 'h1', vector: [9, 9] }]);
      expect((await store.getEmbeddings('m1', ['h1'])).get('h1')).toEqual(v1);

      const many = Array.from({ length: 1203 }, (_, i) => ({ textHash: `k${i}`, vector: [i, -i, f(i / 7)] }));
      await store.putEmbeddings('big', many);
      await store.putEmbeddings('big', []);
      const back = await store.getEmbeddings('big', many.map((m) => m.textHash));
      expect(back.size).toBe(1203);
      expect(back.get('k1202')).toEqual([1202, -1202, f(1202 / 7)]);
    });

    it('writes and searches audit records', async () => {
      const t = (s: string) => new Date(`2024-06-01T${s}Z`);
      await store.insertAudit({ at: t('10:00:00.000'), user: 'alice@acme.test', agent: null, action: 'search', query: 'q1', documentIds: ['d1', 'd2'], requestId: 'r1' });
      await store.insertAudit({ at: t('11:00:00.000'), user: 'bob@acme.test', agent: 'agent-1', action: 'search', query: 'q2', documentIds: [], requestId: null });
      await store.insertAudit({ at: t('12:00:00.000'), user: 'alice@acme.test', agent: 'agent-1', action: 'search', query: 'q3', documentIds: ['d3'], requestId: null });
      await store.insertAudit({ user: null, agent: null, action: 'source.delete', query: null, documentIds: [], requestId: null });

      const all = await store.searchAudit({});
      expect(all).toHaveLength(4);
      expect(all[0]!.action).toBe('source.delete');
      expect(Date.now() - all[0]!.at.getTime()).toBeLessThan(60_000);
      expect(all.slice(1).map((a) => a.query)).toEqual(['q3', 'q2', 'q1']);
      expect(all[3]).toMatchObject({ user: 'alice@acme.test', agent: null, documentIds: ['d1', 'd2'], requestId: 'r1', at: t('10:00:00.000') });
      expect(all[3]!.id).toMatch(/^[0-9a-f-]{36}$/);

      expect((await store.searchAudit({ user: 'ALICE@acme.test' })).map((a) => a.query)).toEqual(['q3', 'q1']);
      expect((await store.searchAudit({ agent: 'agent-1' })).map((a) => a.query)).toEqual(['q3', 'q2']);
      expect((await store.searchAudit({ user: 'alice@acme.test', agent: 'agent-1' })).map((a) => a.query)).toEqual(['q3']);
      expect((await store.searchAudit({ from: t('11:00:00.000'), to: t('12:00:00.000') })).map((a) => a.query)).toEqual(['q3', 'q2']);
      expect((await store.searchAudit({ to: t('10:30:00.000') })).map((a) => a.query)).toEqual(['q1']);
      expect((await store.searchAudit({ limit: 2 })).length).toBe(2);
    });

    it('caps audit search at 100 by default and 1000 at most', async () => {
      await store.driver.query(
        `INSERT INTO audit (id, at, user_name, action, document_ids)
         SELECT 'bulk-' || i, now() - (i || ' seconds')::interval, 'u@x.test', 'search', '{}' FROM generate_series(1, 1005) AS i`);
      expect(await store.searchAudit({})).toHaveLength(100);
      expect(await store.searchAudit({ limit: 5000 })).toHaveLength(1000);
      expect(await store.searchAudit({ limit: 0 })).toHaveLength(1);
      const top = await store.searchAudit({ limit: 3 });
      expect(top.map((a) => a.id)).toEqual(['bulk-1', 'bulk-2', 'bulk-3']);
    });

    it('creates, finds, lists and deletes agents', async () => {
      const a = await store.createAgent('helper', 'hash-a', ['s1', 's2']);
      expect(a).toMatchObject({ name: 'helper', sourceIds: ['s1', 's2'] });
      expect(a.createdAt).toBeInstanceOf(Date);
      const b = await store.createAgent('other', 'hash-b', []);
      expect(await store.getAgentByKeyHash('hash-a')).toEqual(a);
      expect(await store.getAgentByKeyHash('nope')).toBeNull();
      expect((await store.listAgents()).map((x) => x.id)).toEqual([a.id, b.id]);
      await expect(store.createAgent('dup', 'hash-a', [])).rejects.toMatchObject({ status: 409 });
      expect(await store.deleteAgent(a.id)).toBe(true);
      expect(await store.deleteAgent(a.id)).toBe(false);
      expect(await store.getAgentByKeyHash('hash-a')).toBeNull();
    });

    it('deleteSource removes everything that belongs to the source and nothing else', async () => {
      const s = await store.createSource(newSource());
      const keep = await store.createSource(newSource());
      for (const src of [s, keep]) {
        const run = await store.createRun(src.id, 'full');
        await store.upsertDocument(doc(src.id, 'a'), run.id);
        await store.upsertDocument(doc(src.id, 'b'), run.id);
        await store.setCursor(src.id, 'cursor');
        await store.replaceGroups(src.id, [{ groupId: 'g', memberEmails: ['a@x.test'] }]);
      }
      await store.deleteSource(s.id);
      expect(await store.getSource(s.id)).toBeNull();
      for (const table of ['documents', 'runs', 'sync_cursors', 'source_groups']) {
        expect(await count(table, 'source_id = $1', [s.id])).toBe(0);
        expect(await count(table, 'source_id = $1', [keep.id])).toBeGreaterThan(0);
      }
      expect(await store.sourceGroupPrincipals('a@x.test')).toEqual([`sgroup:${keep.id}/g`]);
      await store.deleteSource(s.id); // already gone: no error
    });

    it('rolls back a failed transaction, and nested failures only undo the inner part', async () => {
      const s = await store.createSource(newSource({ name: 'outer' }));
      await expect(store.driver.transaction(async (tx) => {
        await tx.query(`UPDATE sources SET name = 'renamed' WHERE id = $1`, [s.id]);
        throw new Error('nope');
      })).rejects.toThrow('nope');
      expect((await store.getSource(s.id))!.name).toBe('outer');

      await store.driver.transaction(async (tx) => {
        await tx.query(`UPDATE sources SET name = 'kept' WHERE id = $1`, [s.id]);
        await expect(tx.transaction(async (inner) => {
          await inner.query(`UPDATE sources SET name = 'lost' WHERE id = $1`, [s.id]);
          throw new Error('inner');
        })).rejects.toThrow('inner');
      });
      expect((await store.getSource(s.id))!.name).toBe('kept');
    });
  });
}

// ---- PGlite (in memory) -----------------------------------------------------------------------------

metadataStoreSuite('SqlMetadataStore on PGlite', async () => {
  const store = await createMemoryMetadataStore();
  return { store, cleanup: () => store.close() };
});

describe('PgliteDriver', () => {
  it('a query issued during a transaction waits for it instead of joining it', async () => {
    const store = await createMemoryMetadataStore();
    try {
      const s = await store.createSource(newSource({ name: 'before' }));
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let entered!: () => void;
      const inside = new Promise<void>((r) => { entered = r; });
      const tx = store.driver.transaction(async (t) => {
        await t.query(`UPDATE sources SET name = 'during' WHERE id = $1`, [s.id]);
        entered();
        await gate;
        throw new Error('rollback');
      });
      await inside;
      // Issued while the transaction is open: if it ran inside it, it would see 'during'.
      const outside = store.getSource(s.id);
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

  it('createMemoryMetadataStore gives independent empty stores', async () => {
    const a = await createMemoryMetadataStore();
    const b = await createMemoryMetadataStore();
    try {
      await a.createSource(newSource({ name: 'only-in-a' }));
      expect(await a.listSources()).toHaveLength(1);
      expect(await b.listSources()).toHaveLength(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('createMetadataStore without DATABASE_URL persists in <dataDir>/pglite', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'clearance-meta-'));
    try {
      const first = await createMetadataStore({ dataDir, DATABASE_URL: undefined });
      expect(first.driver.kind).toBe('pglite');
      const s = await first.createSource(newSource({ name: 'persisted', credentialsEncrypted: 'v1:x' }));
      await first.close();
      await expect(fs.stat(path.join(dataDir, 'pglite'))).resolves.toBeTruthy();
      const second = await createMetadataStore({ dataDir, DATABASE_URL: undefined });
      try {
        expect((await second.getSource(s.id))!.name).toBe('persisted');
        expect(await second.getSourceCredentials(s.id)).toBe('v1:x');
      } finally {
        await second.close();
      }
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('createMetadataStore with an unreachable DATABASE_URL', () => {
  it('fails with one line naming DATABASE_URL and no password', async () => {
    const err = await createMetadataStore({ dataDir: os.tmpdir(), DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:1/db' })
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
    const store = new SqlMetadataStore(new PgDriver({ connectionString: PG_URL, schema, max: 3 }));
    await store.migrate();
    return { store, cleanup: async () => { await store.close(); await drop(); } };
  });

  it('two processes migrating the same fresh schema at once both succeed, once', async () => {
    const { schema, drop } = await freshSchema();
    const stores = [0, 1, 2].map(() => new SqlMetadataStore(new PgDriver({ connectionString: PG_URL, schema, max: 2 })));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const rows = await stores[0]!.driver.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      const applied = await Promise.all(stores.map((s) => migrate(s.driver)));
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
        const s = await st.createSource(newSource({ name: 'same' }));
        const run = await st.createRun(s.id, 'full');
        const d = await st.upsertDocument({ ...doc(s.id, 'a'), id: 'doc-1' }, run.id);
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

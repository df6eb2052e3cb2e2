import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainDocumentAccess } from '../src/retrieval/explain.ts';
import { search } from '../src/retrieval/search.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * Explain and search must never disagree: for every user and every document of a random world
 * (ACL files, IdP groups, nested source groups, quarantined documents, a disabled source),
 * explain says "allowed" exactly when a search that matches everything returns the document.
 */
const USERS = ['ana', 'ben', 'cho', 'dev'];
const GROUPS = ['eng', 'hr', 'fin'];
const entry = fc.oneof(
  fc.constantFrom(...USERS).map((u) => `user:${u}@acme.test`),
  fc.constantFrom(...GROUPS).map((g) => `group:${g}`),
  fc.constantFrom('everyone', 'domain:acme.test', 'domain:other.test', 'junk:x'),
);
const world = fc.record({
  docs: fc.array(fc.record({ source: fc.integer({ min: 0, max: 1 }), acl: fc.option(fc.array(entry, { maxLength: 3 }), { nil: null }), quarantined: fc.boolean() }), { minLength: 1, maxLength: 6 }),
  userGroups: fc.array(fc.subarray(GROUPS), { minLength: USERS.length, maxLength: USERS.length }),
  disableSecond: fc.boolean(),
});

describe('explain agrees with search', () => {
  let h: Harness;
  let root: string;
  beforeAll(async () => {
    h = await createHarness();
    root = await mkdtemp(path.join(os.tmpdir(), 'clearance-explain-'));
  });
  afterAll(async () => {
    await h.cleanup();
    await rm(root, { recursive: true, force: true });
  });

  it('allowed ⇔ returned, for every user and document', async () => {
    let n = 0;
    await fc.assert(fc.asyncProperty(world, async (w) => {
      const base = path.join(root, `w${n++}`);
      const sourceIds: string[] = [];
      for (const s of [0, 1]) {
        const dir = path.join(base, `s${s}`);
        await mkdir(dir, { recursive: true });
        for (const [i, d] of w.docs.entries()) {
          if (d.source !== s) continue;
          await mkdir(path.join(dir, `d${i}`));
          if (d.acl) await writeFile(path.join(dir, `d${i}`, '.clearance-acl.json'), JSON.stringify({ read: d.acl }));
          await writeFile(path.join(dir, `d${i}`, 'note.txt'), `Shared quarterly note number ${i}.`);
        }
        const src = await h.metadata.sources.create({ name: `w${n}-s${s}`, type: 'filesystem', config: { path: dir }, credentialsEncrypted: null, schedule: null, freshness: null });
        sourceIds.push(src.id);
        expect((await syncNow(h, src.id)).status).toBe('succeeded');
      }
      // A source group (nested) that grants one of the documents, so chains are part of the world.
      await h.metadata.groups.replace(sourceIds[0]!, [
        { groupId: 'all', memberEmails: ['ana@acme.test', 'ben@acme.test'], memberGroupIds: ['core'] },
        { groupId: 'core', memberEmails: ['ana@acme.test'] },
      ]);
      const docs = [];
      for (const id of sourceIds) docs.push(...await h.metadata.documents.list({ sourceId: id, limit: 100 }));
      for (const d of docs) {
        const i = Number(/d(\d+)/.exec(d.path ?? d.title)?.[1] ?? -1);
        if (w.docs[i]?.quarantined) await h.metadata.switches.quarantine(d, 'test', null);
        if (i === 0 && d.sourceId === sourceIds[0]) {
          // As a sync would write a permission change: registry and vector payloads alike.
          const acl = [...d.acl, `sgroup:${sourceIds[0]}/all`].sort();
          await h.metadata.documents.upsert({ ...d, acl }, 'manual');
          await h.vectors.setDocumentAcl(d.id, acl);
        }
      }
      if (w.disableSecond) await h.metadata.sources.update(sourceIds[1]!, { enabled: false });
      for (const [u, user] of USERS.entries()) {
        const ctx = userCtx(h, `${user}@acme.test`, w.userGroups[u]!);
        const returned = new Set((await search({ ctx, input: { query: 'shared quarterly note', topK: 100, filter: { sourceIds } } })).map((r) => r.documentId));
        for (const d of docs) {
          const e = await explainDocumentAccess({ ctx: h, input: { user: `${user}@acme.test`, documentId: d.id, groups: w.userGroups[u]! } });
          expect(e.allowed, `${user} / ${d.path}`).toBe(returned.has(d.id));
          if (e.allowed) expect(e.reasons.length).toBeGreaterThan(0);
          else expect(e.denial).toBeDefined();
        }
      }
      for (const id of sourceIds) await h.metadata.sources.update(id, { enabled: false });
    }), { numRuns: 8, seed: Number(process.env.PROP_SEED ?? 20261202) });
  }, 600_000);
});

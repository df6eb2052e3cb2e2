import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkIdFor, documentIdFor } from '../src/indexer/hash.ts';
import type { DocumentUpsert } from '../src/metadata/interface.ts';
import { search, type SearchInput } from '../src/retrieval/search.ts';
import type { Source } from '../src/types.ts';
import type { ChunkPoint } from '../src/vectorstore/interface.ts';
import type { FakeEmbedder } from './fakes/embedder.ts';
import { createHarness, userCtx, type Harness } from './support/harness.ts';

/**
 * The registry re-check after the vector search: the vector store's payload may lag the registry
 * (a crash between the two writes, a revocation still on its way), so what the registry says wins
 * whenever it is stricter. Each case writes a payload that the store's own filter lets through and
 * a registry row that must stop it.
 */
let h: Harness;
let s1: Source;
let s2: Source;
let runId: string;
const QUERY = 'quarterly revenue forecast';

beforeAll(async () => {
  h = await createHarness();
  s1 = await h.metadata.sources.create({ name: 's1', type: 'filesystem', config: { path: '/s1' }, credentialsEncrypted: null, schedule: null, freshness: null });
  s2 = await h.metadata.sources.create({ name: 's2', type: 'filesystem', config: { path: '/s2' }, credentialsEncrypted: null, schedule: null, freshness: null });
  runId = (await h.metadata.runs.start(s1.id, 'full')).run.id;
});
afterAll(() => h.cleanup());

let n = 0;
/** A document with one chunk: `payload` is what the vector store holds, `row` what the registry says. */
async function put(opts: { source?: Source; payload?: Partial<ChunkPoint>; row?: Partial<DocumentUpsert>; text?: string }): Promise<string> {
  const source = opts.source ?? s1;
  const externalId = `doc-${++n}`;
  const id = documentIdFor(source.id, externalId);
  const text = opts.text ?? `${QUERY} number ${n}`;
  await h.metadata.documents.upsert({
    id, sourceId: source.id, externalId, title: externalId, url: null, path: `/${externalId}`, mimeType: 'text/plain', owner: null, labels: [],
    lastModified: new Date(2_000_000), contentVersion: 'v', contentHash: 'h', aclHash: 'a', acl: ['group:eng'], generation: 1, chunkCount: 1,
    status: 'indexed', error: null, ...opts.row,
  }, runId);
  const vector = (h.embedder as FakeEmbedder).vector(text);
  await h.vectors.upsert([{
    id: chunkIdFor(id, 1, 0), vector, documentId: id, sourceId: source.id, generation: 1, chunkIndex: 0, sectionPath: [], text,
    lastModified: 2_000_000, acl: ['group:eng'], ...opts.payload,
  }]);
  return id;
}

// Every search mode goes through the same filter and the same re-check; each case runs in all three.
describe.each(['hybrid', 'vector', 'keyword'] as const)('the registry re-check after a %s search', (mode) => {
const found = async (input: Partial<SearchInput> = {}, email = 'eve@acme.test', groups = ['eng']) =>
  new Set((await search({ ctx: userCtx(h, email, groups), input: { query: QUERY, topK: 100, mode, ...input } })).map((r) => r.documentId));

  it('returns a document that both the payload and the registry allow', async () => {
    const ok = await put({});
    expect(await found()).toContain(ok);
  });

  it('drops a hit whose payload ACL is wider than the registry ACL (revocation not yet in the store)', async () => {
    const revoked = await put({ payload: { acl: ['group:eng', 'everyone'] }, row: { acl: ['group:finance'] } });
    const narrowed = await put({ payload: { acl: ['everyone'] }, row: { acl: ['user:someone-else@acme.test'] } });
    const emptied = await put({ payload: { acl: ['group:eng'] }, row: { acl: [] } });
    const got = await found();
    expect(got).not.toContain(revoked);
    expect(got).not.toContain(narrowed);
    expect(got).not.toContain(emptied);
    // The registry's reader still finds it.
    expect(await found({}, 'fin@acme.test', ['finance'])).toContain(revoked);
  });

  it('drops chunks of any generation other than the registry row\'s live one', async () => {
    const stale = await put({ row: { generation: 2 } });
    expect(await found()).not.toContain(stale);
  });

  it('drops documents that are not indexed (pending, failed, skipped, deleted) or have no row at all', async () => {
    const ids = await Promise.all((['pending', 'failed', 'skipped', 'deleted'] as const).map((status) => put({ row: { status } })));
    const orphan = await put({});
    await h.metadata.documents.delete(orphan);
    const got = await found();
    for (const id of [...ids, orphan]) expect(got).not.toContain(id);
  });

  it('applies the source scope and the time bound to the registry row, not only the payload', async () => {
    // The payload says s1 (requested) but the registry says the document belongs to s2.
    const moved = await put({ source: s1, row: { sourceId: s2.id } });
    expect(await found({ filter: { sourceIds: [s1.id] } })).not.toContain(moved);
    // The payload is newer than the bound, the registry's last modification is not.
    const older = await put({ payload: { lastModified: 9_000_000 }, row: { lastModified: new Date(1_000) } });
    expect(await found({ filter: { modifiedAfter: new Date(5_000_000) } })).not.toContain(older);
    expect(await found({ filter: { modifiedAfter: new Date(500) } })).toContain(older);
  });

  it('intersects the agent key\'s sources with the requested ones', async () => {
    const inS1 = await put({ source: s1 });
    const inS2 = await put({ source: s2 });
    const agent = { id: 'a1', name: 'bot', sourceIds: [s2.id] };
    expect(await found({ agent })).toEqual(new Set([...(await found({ filter: { sourceIds: [s2.id] } }))]));
    expect(await found({ agent })).toContain(inS2);
    expect(await found({ agent })).not.toContain(inS1);
    expect(await found({ agent, filter: { sourceIds: [s1.id] } })).toEqual(new Set());
    expect(await found({ agent, filter: { sourceIds: [s1.id, s2.id] } })).toEqual(await found({ agent }));
    expect(await found({ agent: { ...agent, sourceIds: [] } })).toEqual(new Set());
  });

  it('still returns every visible chunk when many invisible ones rank higher', async () => {
    const crowd = await Promise.all(Array.from({ length: 60 }, () => put({ text: `${QUERY} ${QUERY}`, payload: { acl: ['group:eng'] }, row: { acl: ['group:other'] } })));
    // One query word, so the keyword channel matches them too, far below the crowd in both channels.
    const visible = await Promise.all(Array.from({ length: 3 }, (_, i) => put({ text: `unrelated text ${i} revenue`, payload: { acl: [`group:rare-${mode}`] }, row: { acl: [`group:rare-${mode}`] } })));
    const got = await found({ topK: 5 }, 'rae@acme.test', [`rare-${mode}`]);
    expect(got).toEqual(new Set(visible));
    for (const id of crowd) expect(got).not.toContain(id);
  });

  it('confirms hits past the first few when the registry refuses the highest-ranked ones', async () => {
    // The store lets all of these through; the registry has revoked the crowd, which ranks first in both channels.
    const g = `group:crowd-${mode}`;
    const crowd = await Promise.all(Array.from({ length: 60 }, () => put({ text: `${QUERY} ${QUERY}`, payload: { acl: [g] }, row: { acl: ['group:other'] } })));
    const visible = await Promise.all(Array.from({ length: 3 }, (_, i) => put({ text: `unrelated text ${i} revenue`, payload: { acl: [g] }, row: { acl: [g] } })));
    for (const topK of [1, 3, 5]) {
      const got = await found({ topK }, 'cy@acme.test', [`crowd-${mode}`]);
      expect(got.size).toBe(Math.min(topK, 3));
      for (const id of got) expect(visible).toContain(id);
      for (const id of crowd) expect(got).not.toContain(id);
    }
  });

  it('gives callers without principals nothing and records the search either way', async () => {
    const before = (await h.metadata.audit.search({})).length;
    const results = await search({ ctx: { ...userCtx(h, 'x@acme.test'), caller: { kind: 'admin-token', email: null, groups: [], isAdmin: true, isCompliance: true } }, input: { query: QUERY, topK: 10, mode } });
    expect(results).toEqual([]);
    expect((await h.metadata.audit.search({})).length).toBe(before + 1);
  });
});

import { describe, expect, it } from 'vitest';
import { buildPermissionFilter, matches } from '../src/access/index.ts';
import type { RequestContext } from '../src/context.ts';
import { callerFilter, confirmHits } from '../src/retrieval/guard.ts';
import type { Caller, DocumentRecord } from '../src/types.ts';
import type { VectorHit } from '../src/vectorstore/interface.ts';

/**
 * The guard on its own, over a registry that is a plain map: what the caller's filter is made of
 * (including the kill switches read on every request) and how the re-check judges store hits by the
 * registry row. search.recheck.test.ts checks the same through every search mode.
 */
type Metadata = RequestContext['metadata'];
const caller = (email: string | null, groups: string[] = []): Caller => ({ kind: 'user', email, groups, isAdmin: false, isCompliance: false });

function registry(opts: { groups?: Record<string, string[]>; hidden?: { sourceIds: string[]; documentIds: string[] }; docs?: DocumentRecord[] } = {}) {
  const asked: string[][] = [];
  const metadata = {
    groups: { principalsOf: async (email: string | null) => (email ? opts.groups?.[email] ?? [] : []) },
    switches: { hidden: async () => opts.hidden ?? { sourceIds: [], documentIds: [] } },
    documents: {
      byIds: async (ids: string[]) => {
        asked.push(ids);
        return (opts.docs ?? []).filter((d) => ids.includes(d.id));
      },
    },
  } as unknown as Metadata;
  return { metadata, asked };
}

const row = (id: string, over: Partial<DocumentRecord> = {}): DocumentRecord => ({
  id, sourceId: 's1', externalId: id, title: id, url: null, path: null, mimeType: null, owner: null, labels: [],
  lastModified: new Date(2_000), contentVersion: null, contentHash: null, aclHash: 'a', acl: ['group:eng'], generation: 1, chunkCount: 1,
  status: 'indexed', error: null, indexedAt: new Date(0), ...over,
});
// The store's payload is deliberately wide open: only the registry row may decide.
const hit = (documentId: string, over: Partial<VectorHit['point']> = {}): VectorHit => ({
  point: { id: `${documentId}-c`, documentId, sourceId: 's1', generation: 1, chunkIndex: 0, sectionPath: [], text: 't', lastModified: 2_000, acl: ['everyone'], ...over },
  score: 1,
});

describe('callerFilter', () => {
  const item = { documentId: 'd1', sourceId: 's1', lastModified: 2_000 };

  it('is everything the caller is: user, domain, everyone, IdP groups and the source groups they are in', async () => {
    const { metadata } = registry({ groups: { 'ana@acme.test': ['sgroup:s1/all', 'user:ben@acme.test'] } });
    const f = await callerFilter({ metadata, caller: caller('ana@acme.test', ['eng']) }, {});
    expect(f.principals).toEqual(['domain:acme.test', 'everyone', 'group:eng', 'sgroup:s1/all', 'user:ana@acme.test']);
    expect(f.sourceIds).toBeUndefined();
    expect(f.modifiedAfter).toBeUndefined();
    // Another user's source groups are not this caller's.
    const ben = await callerFilter({ metadata, caller: caller('ben@acme.test') }, {});
    expect(matches(ben, { ...item, acl: ['sgroup:s1/all'] })).toBe(false);
  });

  it('gives a caller without an email nothing', async () => {
    const { metadata } = registry();
    const f = await callerFilter({ metadata, caller: caller(null, ['eng']) }, {});
    expect(f.principals).toEqual([]);
  });

  it('applies the kill switches read at the time of the request', async () => {
    const hidden = { sourceIds: ['s1'], documentIds: [] as string[] };
    const { metadata } = registry({ hidden });
    const ctx = { metadata, caller: caller('ana@acme.test') };
    expect(matches(await callerFilter(ctx, {}), { ...item, acl: ['everyone'] })).toBe(false);
    expect(matches(await callerFilter(ctx, {}), { ...item, sourceId: 's2', acl: ['everyone'] })).toBe(true);
    hidden.sourceIds = [];
    hidden.documentIds = ['d1'];
    const f = await callerFilter(ctx, {});
    expect(f.excludedDocumentIds).toEqual(['d1']);
    expect(matches(f, { ...item, acl: ['everyone'] })).toBe(false);
    expect(matches(f, { ...item, documentId: 'd2', acl: ['everyone'] })).toBe(true);
  });

  it('narrows to the agent key\'s sources intersected with the requested ones, and by time', async () => {
    const { metadata } = registry();
    const ctx = { metadata, caller: caller('ana@acme.test') };
    expect((await callerFilter(ctx, { agent: { sourceIds: ['s1', 's2'] }, filter: { sourceIds: ['s2', 's3'] } })).sourceIds).toEqual(['s2']);
    expect((await callerFilter(ctx, { agent: { sourceIds: ['s1'] } })).sourceIds).toEqual(['s1']);
    expect((await callerFilter(ctx, { filter: { sourceIds: ['s3'] } })).sourceIds).toEqual(['s3']);
    expect((await callerFilter(ctx, { filter: { modifiedAfter: new Date(5_000) } })).modifiedAfter).toBe(5_000);
  });
});

describe('confirmHits', () => {
  // Built inside each test: Stryker re-runs every test for a mutant reached while tests are collected.
  const ana = () => buildPermissionFilter({ principals: ['user:ana@acme.test', 'group:eng', 'everyone'] });

  it('keeps hits the registry row allows, in the store\'s order, asking for each document once', async () => {
    const { metadata, asked } = registry({ docs: [row('d1'), row('d2')] });
    const hits = [hit('d2'), hit('d1'), hit('d2', { id: 'd2-c2', chunkIndex: 1 })];
    const out = await confirmHits({ metadata }, ana(), hits);
    expect(out.map((o) => o.hit)).toEqual(hits);
    expect(out.map((o) => o.doc.id)).toEqual(['d2', 'd1', 'd2']);
    expect(asked).toEqual([['d2', 'd1']]);
  });

  it('drops a hit whose payload ACL is wider than the registry ACL', async () => {
    const { metadata } = registry({ docs: [row('d1', { acl: ['group:hr'] }), row('d2', { acl: ['user:ana@acme.test'] })] });
    expect((await confirmHits({ metadata }, ana(), [hit('d1'), hit('d2')])).map((o) => o.doc.id)).toEqual(['d2']);
  });

  it('drops hits without an indexed registry row of the same generation', async () => {
    const { metadata } = registry({ docs: [
      row('pending', { status: 'pending' }), row('deleted', { status: 'deleted' }), row('old', { generation: 2 }), row('ok'),
    ] });
    const out = await confirmHits({ metadata }, ana(), [hit('missing'), hit('pending'), hit('deleted'), hit('old'), hit('ok')]);
    expect(out.map((o) => o.doc.id)).toEqual(['ok']);
  });

  it('judges source, kill switches and time by the registry row, not the payload', async () => {
    const { metadata } = registry({ docs: [row('other', { sourceId: 's2' }), row('stale', { lastModified: new Date(1_000) }), row('off'), row('ok')] });
    const f = buildPermissionFilter({ principals: ['group:eng'], requestedSourceIds: ['s1'], excludedDocumentIds: ['off'], modifiedAfter: new Date(1_500) });
    const out = await confirmHits({ metadata }, f, [hit('other'), hit('stale'), hit('off'), hit('ok')]);
    expect(out.map((o) => o.doc.id)).toEqual(['ok']);
    const disabled = buildPermissionFilter({ principals: ['group:eng'], excludedSourceIds: ['s1'] });
    expect(await confirmHits({ metadata }, disabled, [hit('ok')])).toEqual([]);
  });
});

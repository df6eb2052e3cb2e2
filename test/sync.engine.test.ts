import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, type ConnectorRegistration } from '../src/connectors/index.ts';
import type { ChangePage, Connector } from '../src/connectors/interface.ts';
import { FakeEmbedder } from './fakes/embedder.ts';
import { CursorExpiredError } from '../src/errors.ts';
import { documentIdFor, sha256 } from '../src/indexer/hash.ts';
import { search } from '../src/retrieval/search.ts';
import type { Run, RunMode, SourceType } from '../src/types.ts';
import type { PermissionFilter } from '../src/access/index.ts';
import type { ChunkPoint, VectorStore } from '../src/vectorstore/interface.ts';
import { MemoryVectorStore } from '../src/vectorstore/memory.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';
import { z } from 'zod';

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i % 7} word${i % 13}`).join(' ') + '.';
const handbook = (security: string) =>
  `# Handbook\n\nIntro ${words('intro', 20)}\n\n## Travel\n\n${words('travel', 50)}\n\n## Expenses\n\n${words('expense', 50)}\n\n## Security\n\n${security}\n`;

let clock = Date.now() - 3_600_000;
/** Writes a file with a distinct mtime, as an editor would (the connector's change token is mtime + size). */
async function put(file: string, content: string) {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  clock += 10_000;
  await utimes(file, new Date(clock), new Date(clock));
}

/** One sync as a worker runs it; `error` when the run ended failed. */
async function runOnce(h: Harness, sourceId: string, mode?: RunMode): Promise<{ run: Run; error?: Error }> {
  const { runId } = await syncNow(h, sourceId, mode);
  const run = (await h.metadata.runs.get(runId))!;
  return { run, error: run.status === 'failed' ? new Error(run.error ?? 'failed') : undefined };
}

async function titlesFor(h: Harness, email: string, groups: string[], query = 'policy word1 budget') {
  const results = await search({ ctx: userCtx(h, email, groups), input: { query, topK: 100 } });
  return [...new Set(results.map((r) => r.title))].sort();
}

describe('sync engine on a filesystem source', () => {
  let h: Harness;
  let embedder: FakeEmbedder;
  let root: string;
  let sourceId: string;
  const file = (rel: string) => path.join(root, rel);
  let docCount = 0;

  beforeAll(async () => {
    embedder = new FakeEmbedder({ dimension: 64, maxTokens: 128 });
    h = await createHarness({ embedder });
    root = path.join(h.dir, 'corpus');
    await put(file('.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    await put(file('handbook.md'), handbook(words('security', 50)));
    await put(file('eng/.clearance-acl.json'), JSON.stringify({ read: ['group:engineering'] }));
    await put(file('eng/oncall.md'), `# Oncall\n\nPage the incident commander. ${words('oncall', 30)}`);
    await put(file('eng/deploy.md'), `# Deploy\n\nRoll back on error budget burn. ${words('deploy', 30)}`);
    await put(file('fin/.clearance-acl.json'), JSON.stringify({ read: ['group:finance', 'user:Carol@acme.test'] }));
    await put(file('fin/budget.md'), `# Budget\n\nThe budget policy needs CFO approval. ${words('budget', 40)}`);
    await put(file('fin/invoices.txt'), `Invoices policy: pay within 30 days. ${words('invoice', 40)}`);
    docCount = 5;
    const source = await h.metadata.sources.create({ name: 'corpus', type: 'filesystem', config: { path: root }, credentialsEncrypted: null, schedule: null, freshness: null });
    sourceId = source.id;
  });
  afterAll(() => h?.cleanup());

  async function expectConsistent() {
    let total = 0;
    for (const doc of await h.metadata.documents.list({ sourceId, limit: 1000 })) {
      expect(await h.vectors.count({ documentId: doc.id }), doc.externalId).toBe(doc.status === 'indexed' ? doc.chunkCount : 0);
      total += doc.status === 'indexed' ? doc.chunkCount : 0;
    }
    expect(await h.vectors.count({ sourceId })).toBe(total);
    return total;
  }

  /** Every text embedded so far (the counters are reset per test), and how many of them the embedding cache holds. */
  const everEmbedded = new Set<string>();
  const embeddedWith = (...parts: string[]) => {
    for (const t of embedder.embeddedTexts) everEmbedded.add(t);
    return [...everEmbedded].filter((t) => parts.every((p) => t.includes(p)));
  };
  const cached = async (texts: string[]) => (await h.metadata.embeddings.get(embedder.modelId, texts.map(sha256))).size;

  it('indexes everything on the first (full) sync', async () => {
    const { run, error } = await runOnce(h, sourceId);
    expect(error).toBeUndefined();
    expect(run).toMatchObject({ status: 'succeeded', mode: 'full' });
    expect(run.stats).toMatchObject({ seen: docCount, added: docCount, updated: 0, deleted: 0, failed: 0, aclUpdated: 0 });
    const chunks = await expectConsistent();
    expect(run.stats.chunksEmbedded).toBe(chunks);
    expect(await h.metadata.documents.count(sourceId)).toBe(docCount);
    expect(await titlesFor(h, 'carol@acme.test', [])).toEqual(['Budget', 'Handbook', 'invoices']);
    expect(await titlesFor(h, 'dave@acme.test', ['engineering'])).toEqual(['Deploy', 'Handbook', 'Oncall']);
  });

  it('embeds nothing when nothing changed', async () => {
    embeddedWith();
    embedder.resetCounters();
    const { run } = await runOnce(h, sourceId);
    expect(run).toMatchObject({ status: 'succeeded', mode: 'incremental' });
    expect(run.stats).toMatchObject({ seen: docCount, unchanged: docCount, added: 0, updated: 0, aclUpdated: 0, deleted: 0, chunksEmbedded: 0 });
    expect(embedder.textsEmbedded).toBe(0);
  });

  it('re-embeds only the changed chunks of an edited file', async () => {
    const before = (await h.metadata.documents.byExternalId(sourceId, 'handbook.md'))!;
    // The breadcrumb names the document; the old Security section's words are security0…6.
    const oldSecurity = embeddedWith('Handbook', 'security0');
    const unchanged = embeddedWith('Handbook', 'travel0');
    expect(oldSecurity.length).toBeGreaterThan(0);
    expect(unchanged.length).toBeGreaterThan(0);
    expect(await cached([...oldSecurity, ...unchanged])).toBe(oldSecurity.length + unchanged.length);
    await put(file('handbook.md'), handbook(`Badges are revoked within one hour of departure. ${words('badge', 40)}`));
    embedder.resetCounters();
    const { run } = await runOnce(h, sourceId);
    expect(run.stats).toMatchObject({ updated: 1, unchanged: docCount - 1, added: 0, aclUpdated: 0 });
    const after = (await h.metadata.documents.byExternalId(sourceId, 'handbook.md'))!;
    expect(after.generation).toBe(before.generation + 1);
    expect(after.chunkCount).toBeGreaterThan(1);
    // Intro, Travel and Expenses chunks are the same text as before: only Security is new.
    expect(run.stats.chunksEmbedded).toBeGreaterThan(0);
    expect(run.stats.chunksEmbedded).toBeLessThan(after.chunkCount);
    expect(embedder.embeddedTexts.length).toBe(run.stats.chunksEmbedded);
    for (const t of embedder.embeddedTexts) expect(t).toContain('Security');
    // The cache keeps the vectors of the text the document still has, and drops the replaced text's.
    const badges = embeddedWith('Handbook', 'Badges are revoked');
    expect(badges.length).toBeGreaterThan(0);
    expect(await cached([...unchanged, ...badges])).toBe(unchanged.length + badges.length);
    expect(await cached(oldSecurity)).toBe(0);
    await expectConsistent();
    const hits = await search({ ctx: userCtx(h, 'erin@acme.test'), input: { query: 'badges revoked departure', topK: 100 } });
    expect(hits.some((r) => r.text.includes('Badges are revoked'))).toBe(true);
    expect(hits.some((r) => r.text.includes('security0'))).toBe(false);
  });

  it('applies an ACL-file edit without embedding, and search stops returning the revoked documents', async () => {
    expect(await titlesFor(h, 'carol@acme.test', [])).toContain('Budget');
    await put(file('fin/.clearance-acl.json'), JSON.stringify({ read: ['group:finance'] }));
    embedder.resetCounters();
    const { run } = await runOnce(h, sourceId);
    expect(run.status).toBe('succeeded');
    expect(run.stats).toMatchObject({ aclUpdated: 2, chunksEmbedded: 0, updated: 0, added: 0 });
    expect(embedder.textsEmbedded).toBe(0);
    expect(await titlesFor(h, 'carol@acme.test', [])).toEqual(['Handbook']);
    expect(await titlesFor(h, 'frank@acme.test', ['finance'])).toEqual(['Budget', 'Handbook', 'invoices']);
    const budget = (await h.metadata.documents.byExternalId(sourceId, 'fin/budget.md'))!;
    expect(budget.acl).toEqual(['group:finance']);
  });

  it('removes the chunks of a deleted file', async () => {
    const deploy = (await h.metadata.documents.byExternalId(sourceId, 'eng/deploy.md'))!;
    expect(await h.vectors.count({ documentId: deploy.id })).toBeGreaterThan(0);
    const deployTexts = embeddedWith('Deploy', 'deploy0');
    const oncallTexts = embeddedWith('Oncall', 'oncall0');
    expect(deployTexts.length).toBeGreaterThan(0);
    expect(await cached([...deployTexts, ...oncallTexts])).toBe(deployTexts.length + oncallTexts.length);
    await rm(file('eng/deploy.md'));
    docCount--;
    const { run } = await runOnce(h, sourceId);
    expect(run.stats).toMatchObject({ deleted: 1, chunksEmbedded: 0 });
    expect(await h.metadata.documents.byExternalId(sourceId, 'eng/deploy.md')).toBeNull();
    expect(await h.vectors.count({ documentId: deploy.id })).toBe(0);
    // Nor does the embedding cache keep the deleted text's vectors.
    expect(await cached(deployTexts)).toBe(0);
    expect(await cached(oncallTexts)).toBe(oncallTexts.length);
    expect(await titlesFor(h, 'dave@acme.test', ['engineering'])).toEqual(['Handbook', 'Oncall']);
    await expectConsistent();
  });

  it('counts a document that cannot be read as failed and reports it, without failing the run', async () => {
    await put(file('eng/broken.pdf'), '%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a real PDF body\n%%EOF');
    docCount++;
    const { run, error } = await runOnce(h, sourceId);
    expect(error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.stats).toMatchObject({ failed: 1, seen: docCount, unchanged: docCount - 1 });
    expect(run.warnings.some((w) => w.includes('broken.pdf'))).toBe(true);
    const broken = (await h.metadata.documents.byExternalId(sourceId, 'eng/broken.pdf'))!;
    expect(broken.status).toBe('failed');
    expect(broken.error).toBeTruthy();
    expect(await h.vectors.count({ documentId: broken.id })).toBe(0);
    await expectConsistent();
  });

  it('counts a document the chunker fails on as failed, without failing the run, and indexes it once it can', async () => {
    const countTokens = embedder.countTokens;
    embedder.countTokens = (t: string) => {
      if (t.includes('unsplittable')) throw new RangeError('Maximum call stack size exceeded');
      return countTokens.call(embedder, t);
    };
    await put(file('eng/blob.md'), `# Blob\n\nAn unsplittable attachment. ${words('blob', 10)}`);
    docCount++;
    const blobDoc = async () => (await h.metadata.documents.byExternalId(sourceId, 'eng/blob.md'))!;
    try {
      const { run, error } = await runOnce(h, sourceId);
      expect(error).toBeUndefined();
      expect(run.stats).toMatchObject({ failed: 2, seen: docCount });
      expect(run.warnings.some((w) => w.includes('blob.md') && w.includes('Maximum call stack'))).toBe(true);
      expect((await blobDoc()).status).toBe('failed');
      expect(await h.vectors.count({ documentId: (await blobDoc()).id })).toBe(0);
    } finally {
      embedder.countTokens = countTokens;
    }
    // Failed documents are read again on the next run.
    const { run } = await runOnce(h, sourceId);
    expect(run.stats).toMatchObject({ added: 1, failed: 1 });
    expect((await blobDoc()).status).toBe('indexed');
    await rm(file('eng/blob.md'));
    docCount--;
    expect((await runOnce(h, sourceId)).run.stats).toMatchObject({ deleted: 1 });
    await expectConsistent();
  });

  it('fails the run with a clear error when the folder itself is gone, leaving the index as it was', async () => {
    const chunks = await expectConsistent();
    const docs = await h.metadata.documents.count(sourceId);
    const moved = `${root}-moved`;
    await rename(root, moved);
    try {
      const { run, error } = await runOnce(h, sourceId);
      expect(error).toBeInstanceOf(Error);
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/does not exist|cannot read|no such file|ENOENT/i);
      expect(run.error).toContain(root);
      expect(await h.metadata.documents.count(sourceId)).toBe(docs);
      expect(await expectConsistent()).toBe(chunks);
      expect(await titlesFor(h, 'dave@acme.test', ['engineering'])).toEqual(['Handbook', 'Oncall']);
    } finally {
      await rename(moved, root);
    }
    const { run } = await runOnce(h, sourceId);
    expect(run.status).toBe('succeeded');
    expect(run.stats).toMatchObject({ chunksEmbedded: 0, deleted: 0 });
  });
});

// ---- A delta connector whose cursor expires ------------------------------------------------------

interface DeltaState {
  docs: Map<string, string>;
  /** Changes since the cursor was issued that the delta feed will report. */
  pending: { id: string; deleted?: boolean }[];
  cursor: number;
  expired: boolean;
  calls: { cursor: string | null; full: boolean }[];
}
const deltaStates = new Map<string, DeltaState>();
const DELTA_TYPE = 'delta-test' as SourceType;

function deltaConnector(sourceId: string): Connector {
  const s = () => deltaStates.get(sourceId)!;
  const upsert = (id: string, text: string) => ({
    kind: 'upsert' as const,
    doc: { externalId: id, title: id, url: null, path: `/${id}`, mimeType: 'text/plain', lastModified: new Date(0), owner: null, contentVersion: `v:${text.length}:${text.slice(-12)}` },
    acl: { principals: ['everyone'] },
    fetch: async () => ({ bytes: Buffer.from(text), mimeType: 'text/plain' }),
  });
  return {
    type: DELTA_TYPE,
    enumeratesEverything: false,
    async test() {},
    async *changes({ cursor, full }): AsyncIterable<ChangePage> {
      const st = s();
      st.calls.push({ cursor, full });
      if (!full && cursor !== null) {
        if (st.expired) throw new CursorExpiredError('410 Gone: resync required');
        const changes = st.pending.map((p) => (p.deleted ? { kind: 'delete' as const, externalId: p.id } : upsert(p.id, st.docs.get(p.id)!)));
        st.pending = [];
        yield { changes, cursor: String(++st.cursor) };
        return;
      }
      const ids = [...st.docs.keys()].sort();
      for (let i = 0; i < ids.length; i += 2) {
        const last = i + 2 >= ids.length;
        yield { changes: ids.slice(i, i + 2).map((id) => upsert(id, st.docs.get(id)!)), cursor: last ? String(++st.cursor) : null };
      }
      st.pending = [];
    },
  };
}
(connectors as Record<string, ConnectorRegistration>)[DELTA_TYPE] = {
  factory: ({ sourceId }) => deltaConnector(sourceId),
  configSchema: z.record(z.string(), z.unknown()),
  credentialsSchema: null,
};

describe('sync engine on a delta source', () => {
  let h: Harness;
  beforeAll(async () => { h = await createHarness(); });
  afterAll(() => h?.cleanup());

  it('falls back to a full enumeration when the cursor expires, and prunes what disappeared meanwhile', async () => {
    const source = await h.metadata.sources.create({ name: 'delta', type: DELTA_TYPE, config: {}, credentialsEncrypted: null, schedule: null, freshness: null });
    const st: DeltaState = {
      docs: new Map([['a', `Alpha ${words('alpha', 20)}`], ['b', `Bravo ${words('bravo', 20)}`], ['c', `Charlie ${words('charlie', 20)}`], ['d', `Delta ${words('delta', 20)}`]]),
      pending: [], cursor: 0, expired: false, calls: [],
    };
    deltaStates.set(source.id, st);
    const first = await runOnce(h, source.id);
    expect(first.run.stats).toMatchObject({ added: 4 });
    const embedder = h.embedder as FakeEmbedder;
    const firstTexts = [...embedder.embeddedTexts];

    // A normal delta: only what changed is reported; nothing else is touched or pruned.
    st.docs.set('a', `Alpha edited ${words('alpha', 21)}`);
    st.pending.push({ id: 'a' });
    const delta = await runOnce(h, source.id);
    expect(delta.run).toMatchObject({ status: 'succeeded', mode: 'incremental' });
    expect(delta.run.stats).toMatchObject({ seen: 1, updated: 1, deleted: 0 });
    expect(st.calls.at(-1)).toEqual({ cursor: '1', full: false });

    // A delta that deletes "d" takes its vectors out of the index and out of the embedding cache.
    const cachedCount = async (texts: string[]) => (await h.metadata.embeddings.get(embedder.modelId, texts.map(sha256))).size;
    const dTexts = firstTexts.filter((t) => t.includes('Delta delta0'));
    const cTexts = firstTexts.filter((t) => t.includes('Charlie charlie0'));
    expect(dTexts.length).toBeGreaterThan(0);
    expect(await cachedCount([...dTexts, ...cTexts])).toBe(dTexts.length + cTexts.length);
    st.docs.delete('d');
    st.pending.push({ id: 'd', deleted: true });
    const del = await runOnce(h, source.id);
    expect(del.run.stats).toMatchObject({ deleted: 1 });
    expect(await h.vectors.count({ documentId: documentIdFor(source.id, 'd') })).toBe(0);
    expect(await cachedCount(dTexts)).toBe(0);
    expect(await cachedCount(cTexts)).toBe(cTexts.length);

    // Upstream loses our cursor; meanwhile "b" was deleted, and the delta that said so is gone too.
    st.docs.delete('b');
    st.expired = true;
    const bId = documentIdFor(source.id, 'b');
    expect(await h.vectors.count({ documentId: bId })).toBeGreaterThan(0);
    const resync = await runOnce(h, source.id);
    expect(resync.error).toBeUndefined();
    expect(resync.run).toMatchObject({ status: 'succeeded', mode: 'full' });
    expect(resync.run.warnings.join('\n')).toMatch(/cursor expired/);
    expect(resync.run.stats).toMatchObject({ seen: 2, unchanged: 2, deleted: 1, chunksEmbedded: 0 });
    expect(st.calls.slice(-2)).toEqual([{ cursor: '3', full: false }, { cursor: null, full: true }]);
    expect(await h.metadata.documents.byExternalId(source.id, 'b')).toBeNull();
    expect(await h.vectors.count({ documentId: bId })).toBe(0);
    expect(await h.metadata.sources.cursor(source.id)).toBe('4');
  });
});

// ---- Atomic replacement --------------------------------------------------------------------------

/** Runs `probe` before and after every write, so a test can look at the index between write steps. */
class ProbingVectorStore implements VectorStore {
  readonly kind = 'probing';
  probe: (() => Promise<void>) | null = null;
  constructor(readonly inner: VectorStore) {}
  private async step<T>(fn: () => Promise<T>): Promise<T> {
    await this.probe?.();
    const r = await fn();
    await this.probe?.();
    return r;
  }
  init(d: number) { return this.inner.init(d); }
  upsert(points: ChunkPoint[]) { return this.step(() => this.inner.upsert(points)); }
  deleteDocument(id: string, opts?: { keepGeneration?: number }) { return this.step(() => this.inner.deleteDocument(id, opts)); }
  deleteSource(id: string) { return this.step(() => this.inner.deleteSource(id)); }
  setDocumentAcl(id: string, acl: string[]) { return this.step(() => this.inner.setDocumentAcl(id, acl)); }
  search(v: number[], f: PermissionFilter, k: number) { return this.inner.search(v, f, k); }
  keywordSearch(q: string, f: PermissionFilter, k: number) { return this.inner.keywordSearch(q, f, k); }
  count(f?: { sourceId?: string; documentId?: string }) { return this.inner.count(f); }
  documentChunks(id: string, generation: number) { return this.inner.documentChunks(id, generation); }
  ping() { return this.inner.ping(); }
  close() { return this.inner.close(); }
}

describe('atomic replacement of a document', () => {
  let h: Harness;
  let vectors: ProbingVectorStore;
  beforeAll(async () => {
    vectors = new ProbingVectorStore(new MemoryVectorStore());
    h = await createHarness({ vectors });
  });
  afterAll(() => h?.cleanup());

  it('never lets a concurrent search see both generations, or neither, while a document is re-indexed', async () => {
    const root = path.join(h.dir, 'atomic');
    await put(path.join(root, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    const version = (v: string) => `# Guide\n\n## One\n\n${words(v, 50)}\n\n## Two\n\n${words(v, 50)}\n\n## Three\n\n${words(v, 50)}\n`;
    await put(path.join(root, 'guide.md'), version('alpha'));
    await put(path.join(root, 'other.md'), `# Other\n\n${words('other', 30)}`);
    const source = await h.metadata.sources.create({ name: 'atomic', type: 'filesystem', config: { path: root }, credentialsEncrypted: null, schedule: null, freshness: null });
    await runOnce(h, source.id);
    const guideId = documentIdFor(source.id, 'guide.md');
    const oldCount = (await h.metadata.documents.byExternalId(source.id, 'guide.md'))!.chunkCount;

    const seen: string[] = [];
    const look = async () => {
      const results = await search({ ctx: userCtx(h, 'gina@acme.test'), input: { query: 'alpha0 omega0 word1', topK: 100 } });
      const mine = results.filter((r) => r.documentId === guideId);
      const versions = new Set(mine.map((r) => (r.text.includes('alpha0') ? 'alpha' : r.text.includes('omega0') ? 'omega' : '?')));
      expect(mine.length, 'the document vanished from search mid-replacement').toBeGreaterThan(0);
      expect([...versions], 'search saw chunks of both generations').toHaveLength(1);
      const v = [...versions][0]!;
      expect(mine).toHaveLength(v === 'alpha' ? oldCount : newCount);
      seen.push(v);
    };
    // The registry write is a step too: probe around it as well.
    const documents = h.metadata.documents;
    const upsertDocument = documents.upsert.bind(documents);
    documents.upsert = async (doc, runId) => {
      await look();
      const r = await upsertDocument(doc, runId);
      await look();
      return r;
    };
    const upsertDocuments = documents.upsertMany.bind(documents);
    documents.upsertMany = async (docs, runId) => {
      await look();
      await upsertDocuments(docs, runId);
      await look();
    };

    await put(path.join(root, 'guide.md'), version('omega') + `\n## Four\n\n${words('omega', 50)}\n`);
    let newCount = oldCount + 1;
    vectors.probe = look;
    const { run, error } = await runOnce(h, source.id);
    vectors.probe = null;
    expect(error).toBeUndefined();
    expect(run.stats).toMatchObject({ updated: 1 });
    newCount = (await h.metadata.documents.byExternalId(source.id, 'guide.md'))!.chunkCount;
    expect(newCount).toBe(oldCount + 1);
    // Probed at every step: the old version until the switch, the new one from then on.
    expect(seen.length).toBeGreaterThanOrEqual(6);
    expect(seen[0]).toBe('alpha');
    expect(seen.at(-1)).toBe('omega');
    const switchAt = seen.indexOf('omega');
    expect(seen.slice(switchAt).every((v) => v === 'omega')).toBe(true);
    expect(await h.vectors.count({ documentId: guideId })).toBe(newCount);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { search } from '../src/retrieval/search.ts';
import { fuse } from '../src/retrieval/fusion.ts';
import type { VectorHit } from '../src/vectorstore/interface.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * Hybrid search end to end on a filesystem source: the keyword channel finds exact identifiers
 * the dense one blurs, under the same permission filter as every other path.
 */
let h: Harness;
let root: string;
let sourceId: string;

beforeAll(async () => {
  h = await createHarness();
  root = await mkdtemp(path.join(os.tmpdir(), 'clearance-hybrid-'));
  const write = async (dir: string, acl: string[], files: Record<string, string>) => {
    await rm(path.join(root, dir), { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(root, dir), { recursive: true }));
    await writeFile(path.join(root, dir, '.clearance-acl.json'), JSON.stringify({ read: acl }));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(root, dir, name), text);
  };
  await write('ops', ['group:ops'], {
    'incident.md': '# Gateway outage\n\nIncident INC-4711: the gateway dropped connections with ERR_CONN_RESET after the v2.3.1 rollout.\n',
    'runbook.md': '# Gateway runbook\n\nRestart the gateway pods one at a time and watch the error rate.\n',
  });
  await write('secret', ['group:security'], {
    'postmortem.md': '# Confidential post-mortem\n\nINC-4711 INC-4711 INC-4711: root cause and the attacker\'s path. INC-4711.\n',
  });
  await write('public', ['everyone'], {
    'holidays.md': '# Holidays\n\nThe office closes between Christmas and New Year.\n',
  });
  const source = await h.metadata.sources.create({ name: 'hybrid', type: 'filesystem', config: { path: root }, credentialsEncrypted: null, schedule: null, freshness: null });
  sourceId = source.id;
  expect((await syncNow(h, source.id)).status).toBe('succeeded');
});
afterAll(async () => {
  await h.cleanup();
  await rm(root, { recursive: true, force: true });
});

const titles = async (query: string, groups: string[], mode?: 'hybrid' | 'vector' | 'keyword', topK = 10) => {
  const results = await search({ ctx: userCtx(h, 'dana@acme.test', groups), input: { query, topK, mode, filter: { sourceIds: [sourceId] } } });
  return results.map((r) => r.title);
};

describe('hybrid search', () => {
  it('answers an identifier query with the one visible document that has it, first, and never the invisible one', async () => {
    for (const mode of ['hybrid', 'keyword'] as const) {
      const got = await titles('INC-4711', ['ops'], mode);
      expect(got[0], mode).toBe('Gateway outage');
      expect(got, mode).not.toContain('Confidential post-mortem');
    }
    expect(await titles('INC-4711', ['ops'], 'vector')).not.toContain('Confidential post-mortem');
    // The reader of the post-mortem finds it.
    expect((await titles('INC-4711', ['security']))[0]).toBe('Confidential post-mortem');
  });

  it('returns every visible chunk when topK exceeds them, in hybrid and vector mode alike', async () => {
    for (const mode of [undefined, 'vector'] as const) {
      expect((await titles('INC-4711', ['ops'], mode, 100)).sort()).toEqual(['Gateway outage', 'Gateway runbook', 'Holidays']);
    }
    // Keyword mode returns the visible chunks that share a term with the query.
    expect(await titles('INC-4711', ['ops'], 'keyword', 100)).toEqual(['Gateway outage']);
  });

  it('gives each result a readable context containing its text', async () => {
    const results = await search({ ctx: userCtx(h, 'dana@acme.test', ['ops']), input: { query: 'ERR_CONN_RESET', topK: 3 } });
    expect(results[0]!.title).toBe('Gateway outage');
    for (const r of results) expect(r.context).toContain(r.text);
  });
});

describe('fusion', () => {
  const hit = (id: string, score: number): VectorHit => ({
    point: { id, documentId: id, sourceId: 's', generation: 1, chunkIndex: 0, sectionPath: [], text: id, lastModified: 0, acl: [] }, score,
  });

  it('admits only chunks of either list, each once, ordered by the weighted normalised score', () => {
    const fused = fuse([hit('a', 0.9), hit('b', 0.8), hit('c', 0.1)], [hit('c', 12), hit('d', 3), hit('a', 1)], { method: 'score', vectorWeight: 0.5, rrfK: 60 });
    // a: 0.5·1 + 0.5·0; c: 0.5·0 + 0.5·1 (a tie keeps the dense order); b: 0.5·0.875; d: 0.5·2/11.
    expect(fused.map((h) => h.point.id)).toEqual(['a', 'c', 'b', 'd']);
    expect(fused[0]!.score).toBeCloseTo(0.5, 6);
    expect(fused[1]!.score).toBeCloseTo(0.5, 6);
    expect(fused[2]!.score).toBeCloseTo(0.4375, 6);
    expect(fused[3]!.score).toBeCloseTo(1 / 11, 6);
  });

  it('reciprocal rank fusion sums 1/(k + rank)', () => {
    const fused = fuse([hit('a', 0.9), hit('b', 0.8)], [hit('b', 5), hit('c', 1)], { method: 'rrf', vectorWeight: 0.5, rrfK: 60 });
    expect(fused.map((h) => h.point.id)).toEqual(['b', 'a', 'c']);
    expect(fused[0]!.score).toBeCloseTo(1 / 62 + 1 / 61, 10);
  });

  it('uses one list alone when the other is empty', () => {
    expect(fuse([], [hit('x', 2), hit('y', 1)]).map((h) => h.point.id)).toEqual(['x', 'y']);
    expect(fuse([hit('x', 0.2)], []).map((h) => h.point.id)).toEqual(['x']);
    expect(fuse([], [])).toEqual([]);
  });
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPermissionFilter } from '../src/access/index.ts';
import { search } from '../src/retrieval/search.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * The central promise: search returns exactly the documents a person may read under the
 * contract's filesystem rules. An independent oracle re-implements the rules from the contract
 * text; random trees, ACL files (including broken ones), users and groups must agree with it.
 */
const USERS = ['ana', 'ben', 'cho', 'dev', 'eve'];
const GROUPS = ['eng', 'finance', 'hr', 'Legal Team'];

type AclFile = { kind: 'valid'; entries: string[] } | { kind: 'garbage' } | { kind: 'wrong-shape' };
interface Folder { acl: AclFile | null; files: number; children: Folder[] }

const entryArb = fc.oneof(
  fc.record({ u: fc.constantFrom(...USERS), upper: fc.boolean() }).map(({ u, upper }) => `user:${upper ? u.toUpperCase() : u}@acme.test`),
  fc.constantFrom(...GROUPS).map((g) => `group:${g}`),
  fc.constant('everyone'),
  fc.constantFrom('role:admin', 'user:nobody', 'group:', 'Everyone', 'domain:acme.test', 'sgroup:x/y'),
);
const aclArb: fc.Arbitrary<AclFile | null> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  { weight: 5, arbitrary: fc.array(entryArb, { maxLength: 4 }).map((entries) => ({ kind: 'valid' as const, entries })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'garbage' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'wrong-shape' as const }) },
);
const folderArb: fc.Arbitrary<Folder> = fc.letrec((tie) => ({
  folder: fc.record({
    acl: aclArb,
    files: fc.integer({ min: 0, max: 3 }),
    children: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant([]), fc.array(tie('folder'), { maxLength: 3 })),
  }),
})).folder as fc.Arbitrary<Folder>;
const usersArb = fc.array(fc.subarray(GROUPS), { minLength: USERS.length, maxLength: USERS.length });

async function materialise(root: string, folder: Folder): Promise<void> {
  await mkdir(root, { recursive: true });
  if (folder.acl) {
    const body = folder.acl.kind === 'valid' ? JSON.stringify({ read: folder.acl.entries })
      : folder.acl.kind === 'garbage' ? '{"read": ["everyone",' : JSON.stringify({ read: 'everyone' });
    await writeFile(path.join(root, '.clearance-acl.json'), body);
  }
  for (let i = 0; i < folder.files; i++) await writeFile(path.join(root, `doc${i}.txt`), `Quarterly note ${root} number ${i}.`);
  for (let i = 0; i < folder.children.length; i++) await materialise(path.join(root, `d${i}`), folder.children[i]!);
}

/** The contract, independently: the nearest ACL file applies alone; none or unparseable → no one. */
function oracle(folder: Folder, user: string, groups: string[], prefix = '', inherited: AclFile | null = null): string[] {
  const acl = folder.acl ?? inherited;
  const readable = (() => {
    if (!acl || acl.kind !== 'valid') return false;
    return acl.entries.some((e) =>
      e === 'everyone' ||
      (e.startsWith('user:') && e.slice(5).toLowerCase() === `${user}@acme.test`) ||
      (e.startsWith('group:') && e.length > 6 && groups.includes(e.slice(6))));
  })();
  const out: string[] = [];
  for (let i = 0; i < folder.files; i++) if (readable) out.push(`${prefix}doc${i}.txt`);
  folder.children.forEach((c, i) => out.push(...oracle(c, user, groups, `${prefix}d${i}/`, acl)));
  return out;
}

const MODES = ['hybrid', 'vector', 'keyword'] as const;

/** What the user finds, the same in every search mode (each channel gets the same filter); checked in all three. */
async function visibleTo(h: Harness, sourceId: string, user: string, groups: string[]) {
  const ctx = userCtx(h, `${user}@acme.test`, groups);
  const perMode = await Promise.all(MODES.map(async (mode) => {
    const results = await search({ ctx, input: { query: 'quarterly note', topK: 100, mode, filter: { sourceIds: [sourceId] } } });
    const docs = await h.metadata.documents.byIds([...new Set(results.map((r) => r.documentId))]);
    return docs.map((d) => d.externalId).sort();
  }));
  for (const [i, mode] of MODES.entries()) expect(perMode[i], `mode ${mode}`).toEqual(perMode[0]);
  return perMode[0]!;
}

describe('search visibility equals the filesystem ACL rules', () => {
  let h: Harness;
  let tmp: string;
  beforeAll(async () => {
    h = await createHarness();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-prop-'));
  });
  afterAll(async () => {
    await h.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  it('no leak and no miss, before and after ACL files change (which embeds nothing)', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(folderArb, folderArb, usersArb, async (tree, aclVariant, userGroups) => {
        const root = path.join(tmp, `case${n++}`);
        await materialise(root, tree);
        const source = await h.metadata.sources.create({ name: path.basename(root), type: 'filesystem', config: { path: root }, credentialsEncrypted: null, schedule: null, freshness: null });
        const sync = async () => {
          const run = await syncNow(h, source.id);
          expect(run.status).toBe('succeeded');
          return run.stats;
        };
        await sync();
        for (const [i, user] of USERS.entries()) {
          expect(await visibleTo(h, source.id, user, userGroups[i]!)).toEqual(oracle(tree, user, userGroups[i]!).sort());
        }
        // Same files, different ACL files: only permissions change.
        const retagged = swapAcls(tree, aclVariant);
        await rm(root, { recursive: true, force: true });
        await materialiseKeepingContent(root, retagged);
        const stats = await sync();
        expect(stats.chunksEmbedded).toBe(0);
        for (const [i, user] of USERS.entries()) {
          expect(await visibleTo(h, source.id, user, userGroups[i]!)).toEqual(oracle(retagged, user, userGroups[i]!).sort());
        }
      }),
      { numRuns: 40 },
    );
  });

  it('the permission filter only ever narrows: agent and request scopes intersect', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), fc.option(fc.array(fc.uuid())), fc.option(fc.array(fc.uuid())), (principals, agent, requested) => {
        const f = buildPermissionFilter({ principals, agentSourceIds: agent ?? undefined, requestedSourceIds: requested ?? undefined });
        for (const id of f.sourceIds ?? []) {
          if (agent) expect(agent).toContain(id);
          if (requested) expect(requested).toContain(id);
        }
        if (agent || requested) expect(f.sourceIds).toBeDefined();
        for (const p of f.principals) expect(principals).toContain(p);
      }),
    );
  });
});

/** Moves the ACL files of `variant` onto the folders of `tree` where both exist. */
function swapAcls(tree: Folder, variant: Folder): Folder {
  return {
    acl: variant.acl,
    files: tree.files,
    children: tree.children.map((c, i) => swapAcls(c, variant.children[i] ?? { acl: null, files: 0, children: [] })),
  };
}

// File contents depend only on path, so rewriting them keeps content hashes identical; mtimes change,
// which makes the engine fetch and hash them (and find nothing to embed).
const materialiseKeepingContent = materialise;

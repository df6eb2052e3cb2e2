import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharepointExternalId } from '../src/connectors/sharepoint/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { encryptJson } from '../src/metadata/secrets.ts';
import { createSyncWork } from '../src/jobs/policy.ts';
import type { SyncJob } from '../src/jobs/interface.ts';
import { search } from '../src/retrieval/search.ts';
import { startFakeGraph, type FakeDrive, type FakeGraph, type FakeGrant, type FakeGroup, type FakeItem, type FakeUser } from './fakes/graph/index.ts';
import { createHarness, userCtx, type Harness } from './support/harness.ts';

/**
 * Failing upstreams: a full SharePoint sync and three incremental ones while the fake tenant
 * answers 10 % of all requests (Graph, downloads, the token endpoint) with a 429 and Retry-After,
 * a 500 or 503, a connection reset, a stall past the client's timeout, or a body cut off halfway.
 *
 * After every attempt — failed ones included — every person's search results are checked against
 * an oracle of the tenant before and after the round's changes: nobody sees a document that
 * neither state lets them read (no leak), and nobody loses one that both states let them read (no
 * loss). A failed attempt must fail cleanly (the run is queued for a retry or failed, with a
 * reason); an attempt that succeeds must match the new state exactly; and each round must
 * converge within a few attempts.
 */

const SEED = Number(process.env.FAULT_SEED ?? 1515);
const RATE = Number(process.env.FAULT_RATE ?? 0.1);
const MAX_ATTEMPTS_PER_ROUND = 12;

type Readers = Map<string, Set<string>>;

describe('SharePoint sync under failing upstreams (10 % of requests fail, seeded)', () => {
  let g: FakeGraph;
  let h: Harness;
  let sourceId: string;
  let docs: FakeDrive;
  const users: Record<string, FakeUser> = {};
  const groups: Record<string, FakeGroup> = {};
  const files: Record<string, FakeItem> = {};
  const log: string[] = [];

  const emails = () => Object.values(users).map((u) => u.mail!.toLowerCase()).concat('mallory@contoso.test');
  const liveFiles = () => [...g.items.values()].filter((i) => i.kind === 'file' && !i.deleted && i.driveId === docs.id);
  const docIdOf = (item: FakeItem) => documentIdFor(sourceId, sharepointExternalId(item.driveId, item.id));

  // ---- the oracle: SharePoint's rules on the fake tenant's ground truth ----------------------------

  function ownGrants(item: FakeItem): FakeGrant[] {
    for (let cur: FakeItem | undefined = item; cur; cur = cur.parentId ? g.items.get(cur.parentId) : undefined) {
      if (cur.own !== null) return cur.own.map((p) => p.grant);
    }
    return [];
  }

  function membersOf(id: string, seen = new Set<string>()): string[] {
    const u = g.users.get(id);
    if (u) return u.mail ? [u.mail.toLowerCase()] : [];
    if (seen.has(id)) return [];
    seen.add(id);
    return [...(g.groups.get(id)?.members ?? [])].flatMap((m: string) => membersOf(m, seen));
  }

  function readersOf(item: FakeItem): Set<string> {
    const out = new Set<string>();
    for (const grant of ownGrants(item)) {
      if ('user' in grant) membersOf(grant.user).forEach((e) => out.add(e));
      else if ('group' in grant) membersOf(grant.group).forEach((e) => out.add(e));
      else if ('link' in grant) for (const id of grant.identities ?? []) membersOf(id).forEach((e) => out.add(e));
      else throw new Error(`the oracle does not model ${JSON.stringify(grant)}`);
    }
    return out;
  }

  /** Document id → emails that may read it, for the tenant as it is now. */
  const oracle = (): Readers => new Map(liveFiles().map((i) => [docIdOf(i), readersOf(i)]));

  // ---- what the index shows ---------------------------------------------------------------------

  async function visibleTo(email: string): Promise<Set<string>> {
    const results = await search({ ctx: userCtx(h, email, []), input: { query: 'contoso', topK: 200 } });
    expect(results.length).toBeLessThan(200);
    return new Set(results.map((r) => r.documentId));
  }

  /** Between the round's two states: nothing neither allows, nothing both allow missing. */
  async function assertBetween(before: Readers, after: Readers, when: string): Promise<void> {
    for (const email of emails()) {
      const visible = await visibleTo(email);
      const allowed = (d: string) => !!before.get(d)?.has(email) || !!after.get(d)?.has(email);
      const required = [...before.keys()].filter((d) => before.get(d)!.has(email) && after.get(d)?.has(email));
      expect({ when, email, leaked: [...visible].filter((d) => !allowed(d)) }).toEqual({ when, email, leaked: [] });
      expect({ when, email, lost: required.filter((d) => !visible.has(d)) }).toEqual({ when, email, lost: [] });
    }
  }

  async function assertExact(state: Readers, when: string): Promise<void> {
    for (const email of emails()) {
      const expected = [...state].filter(([, r]) => r.has(email)).map(([d]) => d).sort();
      expect({ when, email, visible: [...(await visibleTo(email))].sort() }).toEqual({ when, email, visible: expected });
    }
    const stored = await h.metadata.documents.list({ sourceId, limit: 1000 });
    expect(stored.map((d) => d.id).sort()).toEqual([...state.keys()].sort());
    for (const d of stored) {
      expect({ doc: d.path, status: d.status }).toEqual({ doc: d.path, status: 'indexed' });
      expect({ doc: d.path, chunks: await h.vectors.count({ documentId: d.id }) }).toEqual({ doc: d.path, chunks: d.chunkCount });
    }
  }

  /**
   * Runs attempts (the job policy's, then new runs once it gives up) until one succeeds, checking
   * the index after each. Returns how many attempts it took.
   */
  async function syncRound(name: string, before: Readers): Promise<number> {
    const after = oracle();
    const work = createSyncWork(h);
    let job: SyncJob | null = null;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS_PER_ROUND; attempt++) {
      if (!job) {
        const { run } = await h.metadata.runs.start(sourceId, (await h.metadata.sources.cursor(sourceId)) ? 'incremental' : 'full');
        job = { sourceId, runId: run.id, mode: null, attempt: 0, throttled: 0 };
      }
      const outcome = await work(job, { signal: new AbortController().signal });
      const run = (await h.metadata.runs.get(job.runId))!;
      log.push(`${name} attempt ${attempt}: ${run.status}${run.error ? ` (${run.error})` : ''}`);
      if (run.status === 'succeeded') {
        await assertExact(after, `${name}, attempt ${attempt} (succeeded)`);
        return attempt;
      }
      // Failing cleanly: the run says why and waits for a retry, or has given up; never left running.
      expect({ status: run.status, hasReason: !!run.error }).toEqual({ status: outcome.kind === 'retry' ? 'queued' : 'failed', hasReason: true });
      await assertBetween(before, after, `${name}, attempt ${attempt} (${run.status}: ${run.error})`);
      job = outcome.kind === 'retry' ? outcome.job : null;
    }
    throw new Error(`${name} did not converge in ${MAX_ATTEMPTS_PER_ROUND} attempts:\n${log.join('\n')}`);
  }

  const body = (title: string, n = 3) =>
    `# Contoso ${title}\n\n` + Array.from({ length: n }, (_, i) => `Contoso ${title} paragraph ${i}: plans, owners and dates for the quarter.`).join('\n\n');

  beforeAll(async () => {
    g = await startFakeGraph({ pageSize: 4 });
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) users[name] = g.addUser(`${name}@contoso.test`);
    groups.analysts = g.addGroup('Analysts', [users.erin!.id]);
    groups.finance = g.addGroup('Finance', [users.bob!.id, groups.analysts.id]);
    groups.eng = g.addGroup('Engineering', [users.dave!.id, users.frank!.id]);
    const site = g.addSite('Contoso Intranet');
    docs = g.addDrive(site.id, 'Documents', { permissions: [{ user: users.alice!.id, roles: ['owner'] }, { group: groups.eng.id }] });
    for (let i = 0; i < 6; i++) files[`general${i}`] = g.addFile(docs.id, `/General/note-${i}.md`, body(`general note ${i}`));
    for (let i = 0; i < 6; i++) files[`finance${i}`] = g.addFile(docs.id, `/Finance/report-${i}.md`, body(`finance report ${i}`, 4));
    for (let i = 0; i < 4; i++) files[`payroll${i}`] = g.addFile(docs.id, `/Finance/Payroll/pay-${i}.txt`, `Contoso payroll sheet ${i}.`);
    for (let i = 0; i < 5; i++) files[`project${i}`] = g.addFile(docs.id, `/Projects/plan-${i}.md`, body(`project plan ${i}`, 2));
    files.shared = g.addFile(docs.id, '/Shared/brief.md', body('partner brief'));
    g.setPermissions(g.itemByPath(docs.id, '/Finance').id, [{ user: users.alice!.id }, { group: groups.finance.id }]);
    g.setPermissions(g.itemByPath(docs.id, '/Finance/Payroll').id, [{ user: users.carol!.id }]);
    g.setPermissions(g.itemByPath(docs.id, '/Shared').id, []);
    g.addLink(files.shared.id, { scope: 'users', identities: [users.grace!.id] });
    g.addLink(files.project1!.id, { scope: 'users', identities: [users.carol!.id] });

    h = await createHarness();
    const { config, credentials } = g.sourceConfig({ siteIds: [site.id], requestTimeoutMs: 1500, maxConcurrency: 4 });
    const source = await h.metadata.sources.create({
      name: 'intranet', type: 'sharepoint', config, schedule: null, freshness: null,
      credentialsEncrypted: encryptJson(h.secretKey, credentials),
    });
    sourceId = source.id;
    g.chaos({ rate: RATE, seed: SEED, stallMs: 2500, retryAfterSeconds: 1 });
  });

  afterAll(async () => {
    g?.chaos(null);
    await h?.cleanup();
    await g?.close();
    console.log(`fault injection (seed ${SEED}):\n${log.join('\n')}`);
  });

  it('full sync, then three incremental rounds of changes: converged each time, never a leak or a loss in between', { timeout: 240_000 }, async () => {
    const empty: Readers = new Map();
    await syncRound('round 0 (full)', empty);

    // Round 1: content edits, new and deleted files, a folder's permissions replaced, a new link.
    let before = oracle();
    g.updateContent(files.general0!.id, body('general note 0, revised', 4));
    g.updateContent(files.finance2!.id, body('finance report 2, restated', 5));
    files.new1 = g.addFile(docs.id, '/Projects/kickoff.md', body('kickoff'));
    files.new2 = g.addFile(docs.id, '/Finance/audit.md', body('audit'));
    g.delete(files.general5!.id);
    g.delete(files.payroll3!.id);
    g.setPermissions(g.itemByPath(docs.id, '/Projects').id, [{ user: users.alice!.id }, { user: users.grace!.id }]);
    g.addLink(files.general1!.id, { scope: 'users', identities: [users.carol!.id] });
    await syncRound('round 1', before);

    // Round 2: group memberships change (nested), a file moves between folders, a rename.
    before = oracle();
    g.removeGroupMember(groups.analysts!.id, users.erin!.id);
    g.addGroupMember(groups.finance!.id, users.frank!.id);
    g.addGroupMember(groups.analysts!.id, users.grace!.id);
    g.move(files.finance0!.id, g.itemByPath(docs.id, '/General').id);
    g.rename(files.project2!.id, 'plan-2-final.md');
    g.updateContent(files.payroll0!.id, 'Contoso payroll sheet 0, corrected.');
    await syncRound('round 2', before);

    // Round 3: inheritance restored, more deletions and edits, a new folder with its own permissions.
    before = oracle();
    g.resetInheritance(g.itemByPath(docs.id, '/Projects').id);
    g.delete(files.finance4!.id);
    g.delete(files.new1!.id);
    g.updateContent(files.general2!.id, body('general note 2, rewritten', 6));
    files.new3 = g.addFile(docs.id, '/Legal/contract.md', body('contract'));
    g.setPermissions(g.itemByPath(docs.id, '/Legal').id, [{ user: users.carol!.id }, { group: groups.finance!.id }]);
    await syncRound('round 3', before);

    // The faults really happened, of every kind.
    const counts = g.faultCounts();
    console.log('faults injected:', counts, 'of', g.requests.length, 'requests');
    for (const kind of ['429', '500', '503', 'reset', 'stall', 'truncate']) expect(counts[kind] ?? 0).toBeGreaterThan(0);
  });
});

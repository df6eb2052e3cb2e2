import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { driveExternalId } from '../src/connectors/google-drive/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { search } from '../src/retrieval/search.ts';
import type { DocumentRecord, Run, RunMode, RunStats } from '../src/types.ts';
import {
  DIRECTORY_SCOPE, DRIVE_SCOPE, FOLDER, SHORTCUT, myDriveRoot, startFakeGoogle,
  type FakeFile, type FakeGoogle, type FakeSharedDrive,
} from './fakes/google/index.ts';
import { buildDocx, buildPdf } from './fixtures/documents.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * The Google Drive acceptance test: a fake Workspace with nested (and cyclic) groups, shared drives
 * with members, a My Drive folder tree with inherited sharing, domain and anyone grants with and
 * without discovery, link-only shares, shortcuts, renames, moves into restricted folders,
 * deletions, membership changes, throttling and an expired page token is synced through the real
 * engine again and again. After every sync each person's search results must be exactly what an
 * independent oracle — contract §4 applied to the fake Workspace's ground truth — says they may
 * read, and no sync may embed more than its change called for.
 */

const ADMIN_TOKEN = 'google-drive-e2e-admin-token-01';
const QUERY = 'acme';
const DOMAIN = 'acme.test';

let g: FakeGoogle;
let h: Harness;
let app: ReturnType<typeof createApp>;
let sourceId: string;
let key: Record<string, string>;
let financeDrive: FakeSharedDrive, engDrive: FakeSharedDrive, archiveDrive: FakeSharedDrive;
let projects: FakeFile;
const f: Record<string, FakeFile> = {};
const u = (name: string) => `${name}@${DOMAIN}`;

/** Every caller searched after each sync: Workspace users, a domain user in no group, an outsider. */
const callers = ['admin', 'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'zoe'].map(u).concat('mallory@evil.test');

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i % 5} item${i % 11}`).join(' ') + '.';
function handbook(q3: string): string {
  return [
    '# Acme engineering handbook',
    `## Onboarding\n\nAcme engineers start with a buddy. ${words('buddy', 40)}`,
    `## Reviews\n\nAcme reviews every change. ${words('review', 40)}`,
    `## Releases\n\n${q3}`,
    `## Incidents\n\nAcme writes a postmortem for every incident. ${words('incident', 40)}`,
  ].join('\n\n');
}

const req = (p: string, body?: unknown) =>
  app.request(p, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

// ---- the oracle -------------------------------------------------------------------------------------

const INDEXABLE = /^(text\/|application\/pdf$|application\/vnd\.openxmlformats-officedocument\.wordprocessingml\.document$|application\/vnd\.google-apps\.(document|spreadsheet|presentation)$)/;

/** In scope: every live file of the two configured shared drives and below alice's Projects folder. */
function inScope(file: FakeFile): boolean {
  if (!g.isLive(file)) return false;
  if (file.driveId) return file.driveId === financeDrive.id || file.driveId === engDrive.id;
  return g.ancestors(file).some((a) => a.id === projects.id);
}

/** Files the source holds: in-scope files, plus what in-scope shortcuts point at outside the scope. */
function sourceFiles(): FakeFile[] {
  const out = new Map<string, FakeFile>();
  for (const file of g.files.values()) {
    if (!inScope(file) || file.mimeType === FOLDER) continue;
    if (file.mimeType !== SHORTCUT) {
      out.set(file.id, file);
      continue;
    }
    const target = g.files.get(file.shortcutTarget!);
    if (!target || !g.isLive(target) || inScope(target)) continue;
    const reached = target.mimeType === FOLDER ? g.descendants(target.id).filter((d) => g.isLive(d)) : [target];
    for (const r of reached) if (r.mimeType !== FOLDER && r.mimeType !== SHORTCUT) out.set(r.id, r);
  }
  return [...out.values()];
}

/** Contract §4 for Google Drive, from the Workspace's effective permissions: who reads the file. */
function grants(file: FakeFile): Set<string> {
  const out = new Set<string>();
  for (const p of g.effectivePermissions(file)) {
    if (p.deleted || p.pendingOwner || p.view) continue;
    if (p.type === 'user') out.add(`u:${p.emailAddress}`);
    else if (p.type === 'group') out.add(`g:${p.emailAddress}`);
    else if (p.type === 'domain' && p.allowFileDiscovery) out.add(`d:${p.domain}`);
    else if (p.type === 'anyone' && p.allowFileDiscovery) out.add('everyone');
  }
  return out;
}

function readers(file: FakeFile): Set<string> {
  const out = new Set<string>();
  for (const k of grants(file)) {
    if (k.startsWith('u:')) out.add(k.slice(2));
    else if (k.startsWith('g:')) for (const e of g.usersInGroup(k.slice(2))) out.add(e);
    else for (const c of callers) if (k === 'everyone' || c.endsWith(`@${k.slice(2)}`)) out.add(c);
  }
  return out;
}

/** Indexed and searchable: a readable format whose grants reach someone. Skipped formats are recorded only. */
const searchable = (file: FakeFile) => INDEXABLE.test(file.mimeType) && grants(file).size > 0;
const recorded = () => sourceFiles().filter((x) => grants(x).size > 0);
const docIdOf = (file: FakeFile) => documentIdFor(sourceId, driveExternalId(file.id));
const label = (file: FakeFile) => `${file.driveId ? g.mustDrive(file.driveId).name : file.owner}:${g.pathOf(file)}`;

function labelsByDocId(): Map<string, string> {
  return new Map([...g.files.values()].map((x) => [docIdOf(x), `${label(x)}${g.isLive(x) ? '' : ' (gone)'}`]));
}

function snapshot(): Map<string, string> {
  return new Map(recorded().map((x) => [x.id, [...grants(x)].sort().join(',')]));
}
function aclChanges(before: Map<string, string>, after: Map<string, string>): number {
  let n = 0;
  for (const [id, acl] of after) if (before.has(id) && before.get(id) !== acl) n++;
  return n;
}

// ---- checks -------------------------------------------------------------------------------------------

async function visibleTo(email: string): Promise<string[]> {
  const results = await search({ ctx: userCtx(h, email, []), input: { query: QUERY, topK: 100 } });
  expect(results.length).toBeLessThan(100);
  const names = labelsByDocId();
  return [...new Set(results.map((r) => names.get(r.documentId) ?? `unknown ${r.documentId}`))].sort();
}

async function assertConverged(): Promise<void> {
  const files = sourceFiles();
  for (const email of callers) {
    const expected = files.filter((x) => searchable(x) && readers(x).has(email)).map(label).sort();
    expect({ email, visible: await visibleTo(email) }).toEqual({ email, visible: expected });
  }
  const stored = await h.metadata.documents.list({ sourceId, limit: 1000 });
  const names = labelsByDocId();
  expect(stored.map((d) => names.get(d.id) ?? d.externalId).sort()).toEqual(recorded().map(label).sort());
  for (const file of recorded()) {
    const doc = stored.find((d) => d.id === docIdOf(file))!;
    expect({ file: label(file), status: doc.status }).toEqual({ file: label(file), status: INDEXABLE.test(file.mimeType) ? 'indexed' : 'skipped' });
    expect(await h.vectors.count({ documentId: doc.id })).toBe(doc.status === 'indexed' ? doc.chunkCount : 0);
  }
}

async function sync(mode?: RunMode): Promise<{ stats: RunStats; run: Run }> {
  const { runId } = await syncNow(h, sourceId, mode);
  const run = (await h.metadata.runs.get(runId))!;
  expect(run.status, run.error ?? '').toBe('succeeded');
  return { stats: run.stats, run };
}

const doc = async (file: FakeFile): Promise<DocumentRecord> => (await h.metadata.documents.byExternalId(sourceId, driveExternalId(file.id)))!;
async function chunksOf(file: FakeFile): Promise<string[]> {
  const results = await search({ ctx: userCtx(h, u('dave'), []), input: { query: QUERY, topK: 100 } });
  return results.filter((r) => r.documentId === docIdOf(file)).map((r) => `${r.sectionPath.join(' > ')}\n${r.text}`);
}

// ---- the Workspace -----------------------------------------------------------------------------------

beforeAll(async () => {
  g = await startFakeGoogle({ domain: DOMAIN, pageSize: 4 });
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'zoe']) g.addUser(u(name));
  g.addUser(u('admin'), { admin: true });
  // Nested: all-finance ⊃ analysts ⊃ erin. A cycle: engineering ⊃ leads ⊃ engineering.
  g.addGroup(u('analysts'), [u('erin')]);
  g.addGroup(u('all-finance'), [u('bob'), u('analysts')]);
  g.addGroup(u('engineering'), [u('dave'), u('frank')]);
  g.addGroup(u('leads'), [u('carol'), u('engineering')]);
  g.addMember(u('engineering'), u('leads'));
  key = g.createServiceAccount('clearance-sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });

  // Finance: the admin is no member, so the connector must read it as a member (alice).
  financeDrive = g.addSharedDrive('Finance', [
    { type: 'user', emailAddress: u('alice'), role: 'organizer' },
    { type: 'group', emailAddress: u('all-finance'), role: 'reader' },
  ]);
  engDrive = g.addSharedDrive('Engineering', [
    { type: 'user', emailAddress: u('admin'), role: 'organizer' },
    { type: 'group', emailAddress: u('engineering'), role: 'writer' },
  ]);
  archiveDrive = g.addSharedDrive('Archive', [{ type: 'user', emailAddress: u('admin'), role: 'organizer' }]);

  const budgets = g.addFolder(financeDrive.id, 'Budgets', { permissions: [{ type: 'user', emailAddress: u('grace') }] });
  f.budget = g.addFile(budgets.id, 'budget-2025.docx', await buildDocx([{ heading: 1, text: 'Acme budget 2025' }, { text: 'Acme spends on cloud.' }]));
  f.forecast = g.addGoogleFile(budgets.id, 'Forecast', 'spreadsheet', 'quarter,acme revenue\nQ1,12\nQ2,14\n');
  f.payroll = g.addFile(financeDrive.id, 'payroll.pdf', buildPdf([['Acme payroll schedule']]));
  f.logo = g.addFile(financeDrive.id, 'logo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));

  const guides = g.addFolder(engDrive.id, 'Guides');
  f.handbook = g.addFile(guides.id, 'handbook.md', handbook(`Acme releases every Tuesday. ${words('tuesday', 40)}`));
  f.deck = g.addGoogleFile(guides.id, 'Architecture', 'presentation', 'Acme architecture: services and queues.');
  f.wiki = g.addFile(engDrive.id, 'wiki.html', '<html><head><title>Acme wiki</title></head><body><p>Acme wiki home.</p></body></html>');
  // Domain and anyone grants, with and without discovery; a link-only share; a pending owner.
  f.announce = g.addFile(engDrive.id, 'announcement.txt', 'Acme all-hands on Friday.', { permissions: [{ type: 'domain', domain: DOMAIN, allowFileDiscovery: true }] });
  f.linkDomain = g.addFile(engDrive.id, 'link-domain.txt', 'Acme link shared with the domain.', { permissions: [{ type: 'domain', domain: DOMAIN, allowFileDiscovery: false }] });
  f.publicFaq = g.addFile(engDrive.id, 'faq.txt', 'Acme public FAQ.', { permissions: [{ type: 'anyone', allowFileDiscovery: true }] });
  f.linkAnyone = g.addFile(engDrive.id, 'link-anyone.txt', 'Acme link shared with anyone.', { permissions: [{ type: 'anyone', allowFileDiscovery: false }] });

  // alice's My Drive: Projects (in scope) with a folder shared with engineering and a private one.
  projects = g.addFolder(myDriveRoot(u('alice')), 'Projects', { permissions: [{ type: 'user', emailAddress: u('admin') }] });
  const team = g.addFolder(projects.id, 'Team', { permissions: [{ type: 'group', emailAddress: u('engineering'), role: 'writer' }] });
  g.addFolder(projects.id, 'Private');
  f.plan = g.addGoogleFile(team.id, 'Plan', 'document', 'Acme project plan: launch in May.');
  f.notes = g.addFile(team.id, 'notes.md', '# Acme notes\n\nMeeting notes of the Acme team.', { permissions: [{ type: 'user', emailAddress: u('carol'), role: 'commenter' }] });
  f.offer = g.addFile(projects.id, 'offer.txt', 'Acme offer for a customer.', { permissions: [{ type: 'user', emailAddress: u('frank'), pendingOwner: true, role: 'writer' }] });
  // bob's file outside the scope, reached through a shortcut in Team; a shortcut back up (no loop);
  // a shortcut into Finance (in scope on its own).
  const bobFolder = g.addFolder(myDriveRoot(u('bob')), 'Bob shared', { permissions: [{ type: 'user', emailAddress: u('alice'), role: 'writer' }] });
  f.bobSpec = g.addFile(bobFolder.id, 'spec.md', '# Acme spec\n\nBob writes the Acme spec.');
  g.addShortcut(team.id, 'Spec (shortcut)', f.bobSpec.id);
  g.addShortcut(team.id, 'Up to Projects', projects.id);
  g.addShortcut(team.id, 'Payroll link', f.payroll.id);
  // Outside the scope altogether: never indexed.
  f.archived = g.addFile(archiveDrive.id, 'old.txt', 'Acme archive.');
  f.aliceLoose = g.addFile(myDriveRoot(u('alice')), 'loose.txt', 'Acme loose file outside Projects.');

  h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN } });
  app = createApp(h, createAuthenticator(h.config));
});

afterAll(async () => {
  await h?.cleanup();
  await g?.close();
});

// ---- the scenario -------------------------------------------------------------------------------------

describe('Google Drive end to end: synced visibility equals Drive semantics, sync after sync', () => {
  const scope = () => ({ driveIds: [financeDrive.id, engDrive.id], folderIds: [projects.id] });

  it('refuses a wrong key, a key without delegation and a wrong adminEmail, each with the reason', async () => {
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, RegExp]> = [
      [{}, { serviceAccountKey: g.foreignKey(key) }, /service-account key was rejected \(invalid_grant: Invalid JWT Signature\.\)/],
      [{}, { serviceAccountKey: g.createServiceAccount('undelegated') }, /domain-wide delegation is not set up .*unauthorized_client.*authorize client ID \d+ for the scopes/],
      [{ adminEmail: u('nobody') }, {}, /adminEmail nobody@acme\.test is not a user of the Workspace \(invalid_grant: Invalid email or User ID\)/],
      [{ adminEmail: u('zoe') }, {}, /adminEmail zoe@acme\.test may not read the Directory/],
    ];
    for (const [config, credentials, detail] of cases) {
      const base = g.sourceConfig(key, scope());
      const res = await req('/v1/sources', { name: 'drive', type: 'google_drive', config: { ...base.config, ...config }, credentials: { ...base.credentials, ...credentials } });
      expect(res.status).toBe(422);
      const problem = await res.json();
      expect(problem.detail).toMatch(/^connection test failed: /);
      expect(problem.detail).toMatch(detail);
      expect(JSON.stringify(problem)).not.toContain('PRIVATE KEY');
    }
    expect((await (await req('/v1/sources')).json()).sources).toEqual([]);
  });

  it('registers the source after a successful connection test', async () => {
    const { config, credentials } = g.sourceConfig(key, scope());
    const res = await req('/v1/sources', { name: 'drive', type: 'google_drive', config, credentials });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body).toMatchObject({ type: 'google_drive', status: 'active', config: { domain: DOMAIN, adminEmail: u('admin') } });
    expect(JSON.stringify(body)).not.toContain('PRIVATE KEY');
    sourceId = body.id;
  });

  it('sync 1 (full): every file in scope indexed with its effective permissions', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('full');
    const files = recorded();
    expect(stats).toMatchObject({ added: files.filter(searchable).length, skipped: 1, failed: 0, deleted: 0 });
    expect(run.warnings.join('\n')).toMatch(/logo\.png: skipped: image/);
    await assertConverged();
    // Spot checks on top of the oracle.
    expect(await visibleTo(u('erin'))).toEqual(['Finance:/Budgets/Forecast', 'Finance:/Budgets/budget-2025.docx', 'Finance:/payroll.pdf',
      'Engineering:/announcement.txt', 'Engineering:/faq.txt'].sort());
    expect(await visibleTo('mallory@evil.test')).toEqual(['Engineering:/faq.txt']);
    expect(await visibleTo(u('frank'))).not.toContain('alice@acme.test:/Projects/offer.txt');
    expect((await doc(f.bobSpec)).path).toBe('/Projects/Team/Spec (shortcut)');
    expect((await doc(f.handbook)).path).toBe('/Engineering/Guides/handbook.md');
    expect((await doc(f.handbook)).chunkCount).toBeGreaterThanOrEqual(4);
  });

  it('sync 2: permission-only changes re-permission without embedding', async () => {
    const before = snapshot();
    // Inherited: Team shared with zoe (its files are not reported by Drive); a file-level share
    // removed; discovery turned on for the domain link.
    g.addPermission(g.mustFile(f.plan.parent).id, { type: 'user', emailAddress: u('zoe') });
    g.removePermission(f.notes.id, (p) => p.emailAddress === u('carol'));
    g.setPermissions(f.linkDomain.id, [{ type: 'domain', domain: DOMAIN, allowFileDiscovery: true }]);
    const expected = aclChanges(before, snapshot());
    expect(expected).toBe(3);

    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0, aclUpdated: expected });
    await assertConverged();
  });

  it('sync 3: membership-only changes (a nested group loses a member, a cycle gains one) embed nothing and rewrite no ACL', async () => {
    expect(await visibleTo(u('erin'))).toContain('Finance:/payroll.pdf');
    g.removeMember(u('analysts'), u('erin'));
    g.addMember(u('leads'), u('grace'));
    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, aclUpdated: 0, added: 0, updated: 0, deleted: 0 });
    await assertConverged();
    expect(await visibleTo(u('erin'))).not.toContain('Finance:/payroll.pdf');
    expect(await visibleTo(u('grace'))).toContain('Engineering:/Guides/handbook.md');
  });

  it('sync 4: a one-section edit embeds only the changed chunks, through 429 and 403 rate limits', async () => {
    const oldChunks = new Set(await chunksOf(f.handbook));
    g.updateContent(f.handbook.id, handbook(`Acme releases on demand now. ${words('demand', 40)}`), { modifiedBy: u('dave') });
    g.resetLog();
    g.throttleNext(1, { status: 429, retryAfter: 1, match: /\/permissions/ });
    g.throttleNext(1, { status: 403, reason: 'userRateLimitExceeded', retryAfter: null, match: /\/changes\?/ });

    const { stats } = await sync();
    expect(stats).toMatchObject({ updated: 1, added: 0, deleted: 0, aclUpdated: 0, failed: 0 });
    const newChunks = await chunksOf(f.handbook);
    const changed = newChunks.filter((c) => !oldChunks.has(c)).length;
    expect(changed).toBeGreaterThan(0);
    expect(stats.chunksEmbedded).toBe(changed);
    expect(stats.chunksEmbedded).toBeLessThan((await doc(f.handbook)).chunkCount);

    const throttled = g.apiRequests().find((r) => r.status === 429)!;
    const retry = g.requests.find((r) => r !== throttled && r.path === throttled.path && r.startedAt >= throttled.endedAt)!;
    expect(retry.status).toBe(200);
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);
    expect(g.apiRequests().some((r) => r.status === 403)).toBe(true);
    await assertConverged();
  });

  it('sync 5: renames and moves (into a restricted folder, out of the scope) update paths and access without embedding', async () => {
    const before = snapshot();
    const team = g.mustFile(f.plan.parent);
    const priv = [...g.files.values()].find((x) => x.name === 'Private')!;
    g.rename(team.id, 'Core team');
    g.move(f.notes.id, priv.id); // leaves the engineering share
    g.move(f.offer.id, myDriveRoot(u('alice'))); // out of Projects: out of scope
    g.rename(f.wiki.id, 'wiki-home.html');
    const expected = aclChanges(before, snapshot());
    expect(expected).toBe(1);

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, failed: 0, deleted: 1, aclUpdated: expected });
    expect((await doc(f.plan)).path).toBe('/Projects/Core team/Plan');
    expect((await doc(f.notes)).path).toBe('/Projects/Private/notes.md');
    expect((await doc(f.bobSpec)).path).toBe('/Projects/Core team/Spec (shortcut)');
    expect((await doc(f.wiki)).path).toBe('/Engineering/wiki-home.html');
    await assertConverged();
  });

  it('sync 6: trash, a trashed folder and a permanent deletion leave the index', async () => {
    g.trash(f.deck.id);
    g.trash(g.mustFile(f.budget.parent).id); // Budgets, with two files Drive does not report
    g.remove(f.wiki.id);
    const { stats } = await sync();
    expect(stats).toMatchObject({ deleted: 4, chunksEmbedded: 0, added: 0, updated: 0 });
    await assertConverged();
  });

  it('sync 7: an expired page token falls back to a full enumeration that converges and prunes the gap', async () => {
    g.expirePageTokens();
    f.kickoff = g.addFile(engDrive.id, 'kickoff.md', '# Acme kickoff\n\nThe Acme kickoff is on Monday.');
    g.remove(f.announce.id);
    g.setPermissions(f.publicFaq.id, [{ type: 'anyone', allowFileDiscovery: false }]);
    const { stats, run } = await sync();
    expect(run.mode).toBe('full');
    expect(run.warnings.join('\n')).toMatch(/delta cursor expired/);
    expect(stats).toMatchObject({ added: 1, updated: 0, deleted: 1, failed: 0 });
    expect(stats.chunksEmbedded).toBe((await doc(f.kickoff)).chunkCount);
    await assertConverged();
    expect(await visibleTo('mallory@evil.test')).toEqual([]);
  });

  it('sync 8: shared-drive membership and a deleted user change access without embedding', async () => {
    const before = snapshot();
    g.setDriveMembers(financeDrive.id, [{ type: 'user', emailAddress: u('alice'), role: 'organizer' }, { type: 'user', emailAddress: u('zoe'), role: 'commenter' }]);
    g.addPermission(f.kickoff.id, { type: 'user', emailAddress: u('carol') });
    g.deleteUser(u('carol'));
    const expected = aclChanges(before, snapshot());
    expect(expected).toBeGreaterThanOrEqual(1);
    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    await assertConverged();
    expect(await visibleTo(u('bob'))).not.toContain('Finance:/payroll.pdf');
    expect(await visibleTo(u('zoe'))).toContain('Finance:/payroll.pdf');
  });

  it('sync 9: the shortcut target changes and the shortcut goes away', async () => {
    g.updateContent(f.bobSpec.id, '# Acme spec\n\nBob rewrote the Acme spec.');
    let { stats } = await sync();
    expect(stats).toMatchObject({ updated: 1, deleted: 0 });
    await assertConverged();
    const shortcut = [...g.files.values()].find((x) => x.name === 'Spec (shortcut)')!;
    g.trash(shortcut.id);
    ({ stats } = await sync());
    expect(stats).toMatchObject({ deleted: 1, chunksEmbedded: 0 });
    await assertConverged();
  });

  it('sync 10: nothing changed, nothing done, still converged', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ added: 0, updated: 0, deleted: 0, aclUpdated: 0, chunksEmbedded: 0, failed: 0 });
    await assertConverged();
  });
});

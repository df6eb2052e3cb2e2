import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { confluenceExternalId } from '../src/connectors/confluence/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { search } from '../src/retrieval/search.ts';
import type { DocumentRecord, Run, RunMode, RunStats } from '../src/types.ts';
import { startFakeConfluence, type FakeAttachment, type FakeConfluence, type FakeContent, type FakeGroup, type FakeUser } from './fakes/confluence/index.ts';
import { buildDocx, buildPdf } from './fixtures/documents.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * The Confluence acceptance test: a fake Cloud site with nested page trees, read restrictions on
 * several ancestor levels naming users and groups, edit-only restrictions, space permissions via
 * groups, a direct user and "all licensed users", a person whose email is hidden, attachments and
 * blog posts, is synced through the real engine again and again while it changes. After every sync
 * each person's search results must be exactly what an independent oracle — CONTRACT §4 applied to
 * the fake site's ground truth — says they may read.
 */

const ADMIN = 'confluence-e2e-admin-token-0123';
const SPACES = ['ENG', 'HR'];

let site: FakeConfluence;
let h: Harness;
let app: ReturnType<typeof createApp>;
let sourceId: string;

let alice: FakeUser, bob: FakeUser, carol: FakeUser, dave: FakeUser, erin: FakeUser, frank: FakeUser, grace: FakeUser, hank: FakeUser;
let engineering: FakeGroup, finance: FakeGroup, managers: FakeGroup;
const p: Record<string, FakeContent> = {};
const a: Record<string, FakeAttachment> = {};

const people = () => [alice, bob, carol, dave, erin, frank, grace, hank];
/** Every person searched after each sync; mallory exists nowhere on the site. */
const callers = () => people().map((u) => u.email).concat('mallory@acme.test');

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i % 5} item${i % 11}`).join(' ') + '.';

function runbook(step3: string): string {
  return [
    '<h1>Payments runbook</h1>',
    `<h2>Step 1</h2><p>Acme checks the payment queue. ${words('queue', 40)}</p>`,
    `<h2>Step 2</h2><p>Acme drains the ledger. ${words('ledger', 40)}</p>`,
    `<h2>Step 3</h2><p>${step3}</p>`,
    `<h2>Step 4</h2><p>Acme reconciles the books. ${words('books', 40)}</p>`,
  ].join('\n');
}

const req = (path: string, init: { body?: unknown } = {}) =>
  app.request(path, {
    method: init.body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });

// ---- the oracle ---------------------------------------------------------------------------------

/** A person the connector can name: their email is visible. Hidden people are reached only by "everyone". */
const named = (u: FakeUser) => !u.emailHidden;
const inGroup = (u: FakeUser, groupId: string) => site.groups.get(groupId)?.members.has(u.accountId) ?? false;

function spaceOpen(c: FakeContent): boolean {
  return site.spaceOf(c).permissions.some((x) => x.operation.key === 'read' && x.operation.targetType === 'space' &&
    x.principal.type === 'access_class' && ['all-licensed-users', 'anonymous-users', 'authenticated-users'].includes(x.principal.id));
}

function viewsSpace(u: FakeUser, c: FakeContent): boolean {
  if (spaceOpen(c)) return true;
  if (!named(u)) return false;
  return site.spaceOf(c).permissions.some((x) => x.operation.key === 'read' && x.operation.targetType === 'space' &&
    ((x.principal.type === 'user' && x.principal.id === u.accountId) || (x.principal.type === 'group' && inGroup(u, x.principal.id))));
}

/** The levels that restrict reading, nearest first: the page and each ancestor with a non-empty read restriction. */
const restrictingLevels = (c: FakeContent) => [c, ...site.ancestors(c).reverse()].filter((x) => x.read.users.size + x.read.groups.size > 0);

/** CONTRACT §4: space view AND every read restriction on the page and each ancestor (edit restrictions ignored). */
function mayRead(u: FakeUser, c: FakeContent): boolean {
  if (!viewsSpace(u, c)) return false;
  return restrictingLevels(c).every((x) => named(u) && (x.read.users.has(u.accountId) || [...x.read.groups].some((g) => inGroup(u, g))));
}

/** The shortcut some connectors take: space view AND only the NEAREST restricted ancestor (or the page itself). */
function mayReadNearestOnly(u: FakeUser, c: FakeContent): boolean {
  if (!viewsSpace(u, c)) return false;
  const nearest = restrictingLevels(c)[0];
  return !nearest || (named(u) && (nearest.read.users.has(u.accountId) || [...nearest.read.groups].some((g) => inGroup(u, g))));
}

const configured = (c: FakeContent) => SPACES.includes(site.spaceOf(c).key);
const livePages = () => [...site.contents.values()].filter((c) => (c.type === 'page' || c.type === 'blogpost') && site.isLive(c) && configured(c));
const liveAttachments = () => [...site.attachments.values()].filter((x) => {
  const c = site.contents.get(x.containerId);
  return c && site.isLive(c) && configured(c) && (c.type === 'page' || c.type === 'blogpost');
});
const indexable = (x: FakeAttachment) => !x.mediaType.startsWith('image/');

const extIdOf = (c: FakeContent) => confluenceExternalId(c.type as 'page' | 'blogpost', c.id);
const docIdOf = (c: FakeContent) => documentIdFor(sourceId, extIdOf(c));
const attExtId = (x: FakeAttachment) => confluenceExternalId('attachment', x.id);
const attDocId = (x: FakeAttachment) => documentIdFor(sourceId, attExtId(x));
const pathOf = (c: FakeContent) => c.type === 'blogpost'
  ? `/${site.spaceOf(c).key}/blog/${c.title}`
  : `/${site.spaceOf(c).key}/${[...site.ancestors(c), c].map((x) => x.title).join('/')}`;
const labelOf = (c: FakeContent) => `${site.spaceOf(c).key}:${c.title}`;
const attLabel = (x: FakeAttachment) => `${labelOf(site.mustContent(x.containerId))}/${x.title}`;

/** Every document ever created, so a leaked deleted one still gets a name. */
function labelsByDocId(): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of site.contents.values()) if (c.type !== 'folder') m.set(docIdOf(c), labelOf(c));
  for (const x of site.attachments.values()) if (site.contents.has(x.containerId)) m.set(attDocId(x), attLabel(x));
  return m;
}

/** Someone the site does not know: any signed-in caller, reached only by what is open to everyone. */
const outsider = (email: string): FakeUser => ({ accountId: `outsider:${email}`, email, displayName: email, emailHidden: true });

function expectedVisible(email: string): string[] {
  const u = people().find((x) => x.email === email) ?? outsider(email);
  const pages = livePages().filter((c) => mayRead(u, c)).map(labelOf);
  const atts = liveAttachments().filter((x) => indexable(x) && mayRead(u, site.mustContent(x.containerId))).map(attLabel);
  return [...pages, ...atts].sort();
}

/** Who may read each live document, to tell which ACLs a change must touch. */
function readersSnapshot(): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of livePages()) m.set(extIdOf(c), people().filter((u) => mayRead(u, c)).map((u) => u.email).join(','));
  for (const x of liveAttachments()) m.set(attExtId(x), m.get(extIdOf(site.mustContent(x.containerId))) ?? '');
  return m;
}
const changedReaders = (before: Map<string, string>, after: Map<string, string>) => [...after].filter(([id, r]) => before.has(id) && before.get(id) !== r).length;

// ---- checks ---------------------------------------------------------------------------------------

async function visibleTo(email: string): Promise<string[]> {
  const results = await search({ ctx: userCtx(h, email, []), input: { query: 'acme', topK: 100 } });
  expect(results.length).toBeLessThan(100);
  const names = labelsByDocId();
  return [...new Set(results.map((r) => names.get(r.documentId) ?? `unknown document ${r.documentId}`))].sort();
}

/** What the stored ACL grants, expanded through the fake's memberships (for named people). */
function grantedBy(acl: string[]): string[] {
  return people().filter((u) => acl.some((pr) => pr === 'everyone' ||
    (named(u) && (pr === `user:${u.email}` || (pr.startsWith(`sgroup:${sourceId}/`) && inGroup(u, pr.slice(`sgroup:${sourceId}/`.length))))))).map((u) => u.email).sort();
}

/** After every sync: each person sees exactly the oracle's set, and the registry mirrors the site. */
async function assertConverged(): Promise<void> {
  for (const email of callers()) {
    expect({ email, visible: await visibleTo(email) }).toEqual({ email, visible: expectedVisible(email) });
  }
  const stored = await h.metadata.documents.list({ sourceId, limit: 1000 });
  const pages = livePages();
  const atts = liveAttachments();
  expect(stored.map((d) => d.id).sort()).toEqual([...pages.map(docIdOf), ...atts.map(attDocId)].sort());
  for (const c of pages) {
    const doc = stored.find((d) => d.id === docIdOf(c))!;
    expect({ page: labelOf(c), status: doc.status, path: doc.path, url: doc.url, readers: grantedBy(doc.acl) }).toEqual({
      page: labelOf(c), status: 'indexed', path: pathOf(c), url: `${site.url}/wiki${site.webui(c)}`,
      readers: people().filter((u) => mayRead(u, c)).map((u) => u.email).sort(),
    });
    expect(await h.vectors.count({ documentId: doc.id })).toBe(doc.chunkCount);
  }
  for (const x of atts) {
    const doc = stored.find((d) => d.id === attDocId(x))!;
    const container = site.mustContent(x.containerId);
    expect({ file: attLabel(x), status: doc.status, path: doc.path, readers: grantedBy(doc.acl) }).toEqual({
      file: attLabel(x), status: indexable(x) ? 'indexed' : 'skipped', path: `${pathOf(container)}/${x.title}`,
      readers: people().filter((u) => mayRead(u, container)).map((u) => u.email).sort(),
    });
  }
}

async function sync(mode?: RunMode): Promise<{ stats: RunStats; run: Run }> {
  const { runId } = await syncNow(h, sourceId, mode);
  const run = (await h.metadata.runs.get(runId))!;
  expect(run.status, run.error ?? '').toBe('succeeded');
  return { stats: run.stats, run };
}

const doc = async (c: FakeContent): Promise<DocumentRecord> => (await h.metadata.documents.byExternalId(sourceId, extIdOf(c)))!;

async function chunksOf(c: FakeContent): Promise<string[]> {
  const results = await search({ ctx: userCtx(h, alice.email, []), input: { query: 'acme', topK: 100 } });
  return results.filter((r) => r.documentId === docIdOf(c)).map((r) => `${r.sectionPath.join(' > ')}\n${r.text}`);
}

// ---- the site -------------------------------------------------------------------------------------

beforeAll(async () => {
  site = await startFakeConfluence({ pageSize: 4, restrictionPageSize: 3 });
  alice = site.addUser('alice@acme.test');
  bob = site.addUser('Bob@Acme.test');
  carol = site.addUser('carol@acme.test');
  dave = site.addUser('dave@acme.test');
  erin = site.addUser('erin@acme.test');
  frank = site.addUser('frank@acme.test');
  grace = site.addUser('grace@acme.test');
  hank = site.addUser('hank@acme.test', { hidden: true });
  engineering = site.addGroup('engineering', [alice, bob, dave, hank]);
  finance = site.addGroup('finance', [carol, erin]);
  managers = site.addGroup('managers', [alice, carol]);

  // ENG: viewable by engineering, by managers, and by frank directly. HR: open to all licensed users.
  site.addSpace('ENG', { view: [{ group: engineering.id }, { group: managers.id }, { user: frank.accountId }] });
  site.addSpace('HR', { view: [{ accessClass: 'all-licensed-users' }] });
  site.addSpace('OPS', { view: [{ group: engineering.id }] }); // not configured: moving there removes pages

  p.home = site.addPage('ENG', 'Engineering home', '<h1>Welcome</h1><p>Acme engineering starts here.</p>', { by: alice });
  p.handbook = site.addPage('ENG', 'Handbook', '<p>The Acme handbook.</p>', { parent: p.home, by: bob });
  p.onboarding = site.addPage('ENG', 'Onboarding', '<p>Acme onboarding checklist.</p>', { parent: p.handbook });
  p.style = site.addPage('ENG', 'Style guide', '<p>Acme writes short sentences.</p>', { parent: p.handbook });
  p.architecture = site.addPage('ENG', 'Architecture', '<h1>Architecture</h1><p>Acme services and how they talk.</p>', { parent: p.home });
  p.services = site.addPage('ENG', 'Services', '<p>Acme service catalogue.</p>', { parent: p.architecture });
  p.payments = site.addPage('ENG', 'Payments', runbook(`Acme settles with the bank. ${words('settle', 40)}`), { parent: p.services, by: dave, owner: alice });
  p.secrets = site.addPage('ENG', 'Secrets', '<p>Acme key rotation schedule.</p>', { parent: p.services });
  p.decisions = site.addPage('ENG', 'Decisions', '<p>Acme decision log.</p>', { parent: p.architecture });
  p.incidents = site.addPage('ENG', 'Incidents', '<p>Acme incident index.</p>', { parent: p.home });
  p.postmortem = site.addPage('ENG', 'Postmortem 2024', '<p>Acme outage review.</p>', { parent: p.incidents });
  p.release = site.addBlogPost('ENG', 'Release notes', '<p>Acme shipped version 2.</p>', { by: bob });
  p.policies = site.addPage('HR', 'Policies', '<p>Acme policies.</p>');
  p.salaries = site.addPage('HR', 'Salaries', '<p>Acme salary process.</p>', { parent: p.policies });
  p.bands = site.addPage('HR', 'Bands', '<p>Acme salary bands.</p>', { parent: p.salaries });
  p.holidays = site.addPage('HR', 'Holidays', '<p>Acme holiday calendar.</p>', { parent: p.policies });

  // Restrictions on several levels: Architecture (engineering + grace, who cannot view ENG),
  // Services (alice, dave, frank, erin), Secrets (managers). Decisions has an EDIT restriction only.
  // Incidents names hank, whose email is hidden. HR: Salaries (finance), Bands (carol + managers).
  site.setReadRestriction(p.architecture, { groups: [engineering], users: [grace] });
  site.setReadRestriction(p.services, { users: [alice, dave, frank, erin] }); // more than one answer holds (3)
  site.setReadRestriction(p.secrets, { groups: [managers] });
  site.setEditRestriction(p.decisions, { users: [bob] });
  site.setReadRestriction(p.incidents, { groups: [engineering], users: [hank, frank] });
  site.setReadRestriction(p.release, { groups: [managers, engineering] });
  site.setReadRestriction(p.salaries, { groups: [finance] });
  site.setReadRestriction(p.bands, { users: [carol], groups: [managers] });

  a.diagram = site.addAttachment(p.services, 'topology.txt', 'Acme topology: api, ledger, bank gateway.', 'text/plain');
  a.report = site.addAttachment(p.payments, 'audit.pdf', buildPdf([['Acme payments audit 2024', 'All controls passed.']]), 'application/pdf');
  a.photo = site.addAttachment(p.payments, 'whiteboard.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]), 'image/png');
  a.guide = site.addAttachment(p.style, 'guide.docx', await buildDocx([{ heading: 1, text: 'Acme style' }, { text: 'Acme prefers plain words.' }]),
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document');

  h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN } });
  app = createApp(h, createAuthenticator(h.config));
});

afterAll(async () => {
  await h?.cleanup();
  await site?.close();
});

// ---- the scenario -----------------------------------------------------------------------------------

describe('Confluence end to end: synced visibility equals Confluence semantics, sync after sync', () => {
  it('refuses a wrong API token and an unknown space key with a 422 saying which', async () => {
    const { config, credentials } = site.sourceConfig(SPACES);
    const wrong = await req('/v1/sources', { body: { name: 'wiki', type: 'confluence', config, credentials: { ...credentials, apiToken: 'not-the-token-xyz' } } });
    expect(wrong.status).toBe(422);
    const p1 = await wrong.json();
    expect(p1.detail).toMatch(/^connection test failed: Confluence at .* rejected the credentials of indexer@acme\.test \(HTTP 401\)/);
    expect(JSON.stringify(p1)).not.toContain('not-the-token-xyz');

    const unknown = await req('/v1/sources', { body: { name: 'wiki', type: 'confluence', config: { ...config, spaceKeys: ['ENG', 'NOPE'] }, credentials } });
    expect(unknown.status).toBe(422);
    expect((await unknown.json()).detail).toMatch(/^connection test failed: unknown space key NOPE: no such space/);
    expect((await (await req('/v1/sources')).json()).sources).toEqual([]);
  });

  it('registers the source after a successful connection test', async () => {
    const { config, credentials } = site.sourceConfig(SPACES);
    const res = await req('/v1/sources', { body: { name: 'wiki', type: 'confluence', config, credentials } });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body).toMatchObject({ name: 'wiki', type: 'confluence', status: 'active', config: { spaceKeys: SPACES } });
    expect(JSON.stringify(body)).not.toContain(site.apiToken);
    sourceId = body.id;
  });

  it('sync 1 (full): every page, blog post and attachment indexed with space ∩ every restriction', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('full');
    const total = livePages().length + liveAttachments().length;
    expect(stats).toMatchObject({ added: total - 1, skipped: 1, updated: 0, deleted: 0, failed: 0, aclUpdated: 0 });
    expect((await doc(p.payments)).chunkCount).toBeGreaterThanOrEqual(4);
    expect((await doc(p.payments)).owner).toBe('alice@acme.test');
    expect(run.warnings.join('\n')).toMatch(/hank.*email is not visible.*grants nothing/);
    expect(run.warnings.join('\n')).toMatch(/whiteboard\.png: skipped: image/);
    await assertConverged();

    // Spot checks of the trickier rules, on top of the oracle.
    expect(await visibleTo(grace.email)).not.toContain('ENG:Architecture'); // named by the restriction, but no space view
    expect(await visibleTo(frank.email)).not.toContain('ENG:Payments'); // passes Services, not Architecture above it
    expect(await visibleTo(bob.email)).toContain('ENG:Decisions'); // an edit restriction does not limit reading
    expect(await visibleTo(hank.email)).toEqual(['HR:Holidays', 'HR:Policies']); // hidden email: only what is open to all
    // A signed-in stranger gets what is open to all licensed users, and nothing else.
    expect(await visibleTo('mallory@acme.test')).toEqual(['HR:Holidays', 'HR:Policies']);
  });

  it('the nearest-restricted-ancestor shortcut would leak in this world; this connector does not', async () => {
    const leaks = people().flatMap((u) => livePages().filter((c) => mayReadNearestOnly(u, c) && !mayRead(u, c)).map((c) => `${u.email} → ${labelOf(c)}`));
    expect(leaks).toEqual(expect.arrayContaining(['frank@acme.test → ENG:Payments']));
    for (const leak of leaks) {
      const [email, label] = leak.split(' → ') as [string, string];
      expect(await visibleTo(email)).not.toContain(label);
    }
  });

  it('sync 2 (incremental): a read restriction added on a grandparent re-permissions its subtree, embedding nothing', async () => {
    const before = readersSnapshot();
    site.setReadRestriction(p.handbook, { groups: [managers] });
    const changed = changedReaders(before, readersSnapshot());
    expect(changed).toBeGreaterThanOrEqual(3); // Handbook, Onboarding, Style guide, guide.docx

    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    expect(stats.aclUpdated).toBeGreaterThanOrEqual(changed);
    await assertConverged();
    expect(await visibleTo(bob.email)).not.toContain('ENG:Onboarding');
  });

  it('sync 3 (incremental): group membership changes alone change visibility and embed nothing', async () => {
    expect(await visibleTo(dave.email)).toContain('ENG:Payments');
    site.removeGroupMember(engineering, dave);
    site.addGroupMember(engineering, grace);
    site.addGroupMember(managers, erin);

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    await assertConverged();
    expect(await visibleTo(dave.email)).not.toContain('ENG:Payments');
    expect(await visibleTo(grace.email)).toContain('ENG:Postmortem 2024');
  });

  it('sync 4 (incremental): editing one section embeds only its changed chunks, through a 429 with Retry-After', async () => {
    const oldChunks = new Set(await chunksOf(p.payments));
    site.editBody(p.payments, runbook(`Acme now settles twice a day. ${words('twice', 40)}`), { by: bob });
    site.resetLog();
    site.throttleNext(1, 429, 1, /\/api\/v2\/pages\?/);

    const { stats } = await sync();
    expect(stats).toMatchObject({ updated: 1, added: 0, deleted: 0, aclUpdated: 0, failed: 0 });
    const newChunks = await chunksOf(p.payments);
    const changed = newChunks.filter((c) => !oldChunks.has(c)).length;
    expect(changed).toBeGreaterThan(0);
    expect(stats.chunksEmbedded).toBe(changed);
    expect(stats.chunksEmbedded).toBeLessThan((await doc(p.payments)).chunkCount);
    expect(newChunks.some((c) => c.includes('twice'))).toBe(true);
    expect(newChunks.some((c) => c.includes('settles with the bank'))).toBe(false);

    const throttled = site.requests.find((r) => r.status === 429)!;
    expect(throttled).toBeDefined();
    const retry = site.requests.find((r) => r !== throttled && r.path === throttled.path && r.startedAt >= throttled.endedAt)!;
    expect(retry.status).toBe(200);
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);
    // Only the edited page's body was read, in one call.
    expect(site.requests.filter((r) => r.path.startsWith('/wiki/api/v2/pages?') && r.status === 200)).toHaveLength(1);
    await assertConverged();
  });

  it('sync 5 (incremental): a page moved under a restricted parent and a renamed ancestor', async () => {
    const before = readersSnapshot();
    site.move(p.onboarding, { parent: p.incidents }); // out of managers-only Handbook, into engineering-only Incidents
    site.move(p.decisions, { parent: p.services }); // now also behind Services
    site.rename(p.architecture, 'System architecture');
    expect(changedReaders(before, readersSnapshot())).toBeGreaterThanOrEqual(2);

    const { stats } = await sync();
    expect(stats).toMatchObject({ added: 0, updated: 1, deleted: 0, failed: 0 }); // the renamed page publishes a version
    expect(stats.chunksEmbedded).toBe((await doc(p.architecture)).chunkCount);
    expect((await doc(p.secrets)).path).toBe('/ENG/Engineering home/System architecture/Services/Secrets');
    expect((await doc(p.onboarding)).path).toBe('/ENG/Engineering home/Incidents/Onboarding');
    await assertConverged();
  });

  it('sync 6 (incremental): a read restriction removed from a grandparent widens its subtree without embedding', async () => {
    expect(await visibleTo(frank.email)).not.toContain('ENG:Payments');
    site.clearReadRestriction(p.architecture);

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    expect(stats.aclUpdated).toBeGreaterThan(0);
    await assertConverged();
    expect(await visibleTo(frank.email)).toContain('ENG:Payments');
  });

  it('sync 7 (incremental): trash, purge, archive and a move to another space remove documents', async () => {
    const styleDoc = await doc(p.style);
    site.trash(p.handbook); // its child Style guide moves up to Engineering home, out of the managers restriction
    site.purge(p.postmortem);
    site.archive(p.bands);
    site.move(p.secrets, { spaceKey: 'OPS' });
    site.deleteAttachment(a.diagram);
    const gone = 5; // Handbook, Postmortem, Bands, Secrets, topology.txt

    const { stats } = await sync();
    expect(stats).toMatchObject({ deleted: gone, added: 0, updated: 0, failed: 0, chunksEmbedded: 0 });
    expect(await h.vectors.count({ documentId: docIdOf(p.handbook) })).toBe(0);
    expect((await doc(p.style)).id).toBe(styleDoc.id);
    expect((await doc(p.style)).path).toBe('/ENG/Engineering home/Style guide');
    await assertConverged();
  });

  it('sync 8 (incremental): space permission changes (a user removed, a group added, a space closed) re-permission everything', async () => {
    site.revokeSpace(site.spaceByKey('ENG'), { user: frank.accountId });
    site.grantSpace(site.spaceByKey('ENG'), { group: finance.id });
    site.revokeSpace(site.spaceByKey('HR'), { accessClass: 'all-licensed-users' });
    site.grantSpace(site.spaceByKey('HR'), { group: managers.id });

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    await assertConverged();
    expect(await visibleTo(hank.email)).toEqual([]);
    expect(await visibleTo(frank.email)).toEqual([]);
  });

  it('sync 9 (incremental): new pages and attachments under restricted parents, through 503s', async () => {
    p.oncall = site.addPage('ENG', 'On-call', '<h1>On-call</h1><p>Acme pager rotation.</p>', { parent: p.incidents, by: carol });
    a.rota = site.addAttachment(p.oncall, 'rota.txt', 'Acme rota: week 1 alice, week 2 bob.', 'text/plain');
    p.leave = site.addBlogPost('HR', 'Leave policy update', '<p>Acme adds a wellness day.</p>');
    site.throttleNext(2, 503, null, /\/rest\/api\/content\/search/);

    const { stats } = await sync();
    expect(stats).toMatchObject({ added: 3, updated: 0, deleted: 0, failed: 0 });
    await assertConverged();
  });

  it('sync 10 (incremental): nothing changed, nothing done, still converged', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ added: 0, updated: 0, deleted: 0, aclUpdated: 0, chunksEmbedded: 0, failed: 0 });
    await assertConverged();
  });

  it('a full sync from scratch agrees with the incremental history and re-embeds nothing', async () => {
    const { stats } = await sync('full');
    expect(stats).toMatchObject({ added: 0, updated: 0, deleted: 0, aclUpdated: 0, chunksEmbedded: 0, failed: 0 });
    await assertConverged();
  });
});

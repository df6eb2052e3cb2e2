import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPermissionFilter } from '../src/access/filter.ts';
import { createApp } from '../src/api/app.ts';
import { sharepointExternalId } from '../src/connectors/sharepoint/index.ts';
import { documentIdFor } from '../src/indexer/hash.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { search } from '../src/retrieval/search.ts';
import type { DocumentRecord, Run, RunMode, RunStats } from '../src/types.ts';
import {
  makeAppCertificate, startFakeGraph,
  type AppCertificateFixture, type FakeDrive, type FakeGraph, type FakeGrant, type FakeGroup, type FakeItem, type FakeSite, type FakeUser,
} from './fakes/graph/index.ts';
import { buildDocx } from './fixtures/documents.ts';
import { createHarness, syncNow, userCtx, type Harness } from './support/harness.ts';

/**
 * The SharePoint acceptance test: a fake tenant with nested groups, SharePoint site groups,
 * inherited and broken inheritance, link shares, moves, deletions and member changes is synced
 * through the real engine again and again, and after every sync each person's search results must
 * be exactly what an independent oracle — SharePoint's rules applied to the fake tenant's ground
 * truth — says they may read. No leak, no miss, and no embedding work that the change did not call
 * for.
 *
 * The same scenario runs in three worlds:
 *  - "entra": permissions name users and Entra groups; one site group is declared by the admin in
 *    siteGroupMembers, another is not (client secret);
 *  - "site groups, certificate": most documents are shared only through SharePoint site groups
 *    (Owners with a user, Members with an Entra group inside, Visitors with a Microsoft 365 group,
 *    custom groups), resolved through SharePoint REST;
 *  - "site groups, client secret": the same tenant, where no site-group grant can open anything and
 *    every run counts the documents a certificate would open.
 */

const ADMIN = 'sharepoint-e2e-admin-token-0123';
const QUERY = 'contoso';

interface World {
  name: string;
  layout: 'entra' | 'siteGroups';
  credential: 'secret' | 'certificate';
}

const worlds: World[] = [
  { name: 'entra groups, declared site group, client secret', layout: 'entra', credential: 'secret' },
  { name: 'site groups, certificate', layout: 'siteGroups', credential: 'certificate' },
  { name: 'site groups, client secret', layout: 'siteGroups', credential: 'secret' },
];

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i % 5} item${i % 11}`).join(' ') + '.';

function roadmap(q3: string): string {
  return [
    '# Contoso product roadmap',
    '',
    `## Q1\n\nContoso ships the search pilot. ${words('pilot', 40)}`,
    `## Q2\n\nContoso opens the pilot to partners. ${words('partner', 40)}`,
    `## Q3\n\n${q3}`,
    `## Q4\n\nContoso plans the general release. ${words('release', 40)}`,
    '',
  ].join('\n\n');
}

describe.each(worlds)('SharePoint end to end ($name): synced visibility equals SharePoint semantics, sync after sync', (world) => {
  /** Finance's and the archive's readers are reachable (through Entra groups, or site groups with a certificate). */
  const resolves = world.layout === 'entra' || world.credential === 'certificate';

  let g: FakeGraph;
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let sourceId: string;
  let cert: AppCertificateFixture | undefined;
  let siteGroupMembers: Record<string, string[]>;

  let alice: FakeUser, bob: FakeUser, carol: FakeUser, dave: FakeUser, erin: FakeUser, frank: FakeUser, grace: FakeUser;
  let financeAll: FakeGroup, analysts: FakeGroup, engineering: FakeGroup, legal: FakeGroup, partners: FakeGroup;
  let site: FakeSite;
  let docs: FakeDrive, archive: FakeDrive;
  const f: Record<string, FakeItem> = {};

  /** Every person searched after each sync; mallory exists nowhere in the tenant. */
  const callers = () => [alice, bob, carol, dave, erin, frank, grace].map((u) => u.mail!).concat('mallory@contoso.test');

  const req = (p: string, init: { body?: unknown } = {}) =>
    app.request(p, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });

  // ---- the oracle ---------------------------------------------------------------------------------

  /**
   * Contract §4 for SharePoint, re-derived from the tenant model: the nearest item (self, then
   * folders up to the library root) that has its own permission set decides; a grant to a user is
   * that user, to an Entra group every user in it through any depth of nesting, to a SharePoint
   * group whatever the admin declared for it, or else its members as SharePoint lists them (users;
   * Entra and Microsoft 365 groups with all their users; a Microsoft 365 group's owners) — but only
   * when the app can read them (certificate); and a sharing link only the identities listed on it,
   * whatever its scope. Any role reads.
   */
  function ownGrants(item: FakeItem): FakeGrant[] {
    for (let cur: FakeItem | undefined = item; cur; cur = cur.parentId ? g.items.get(cur.parentId) : undefined) {
      if (cur.own !== null) return cur.own.map((p) => p.grant);
    }
    return [];
  }

  /** Grantees as `u:<email>` / `g:<entra group id>` / `s:<SharePoint group id>`, before expansion. */
  function grantees(item: FakeItem): Set<string> {
    const out = new Set<string>();
    const principal = (id: string) => {
      const u = g.users.get(id);
      if (u) {
        if (u.mail) out.add(`u:${u.mail.toLowerCase()}`);
      } else if (g.groups.has(id)) out.add(`g:${id}`);
    };
    for (const grant of ownGrants(item)) {
      if ('user' in grant) principal(grant.user);
      else if ('group' in grant) principal(grant.group);
      else if ('link' in grant) for (const id of grant.identities ?? []) principal(id);
      else if ('siteGroup' in grant) {
        const declared = Object.entries(siteGroupMembers).find(([name]) => name.toLowerCase() === grant.siteGroup.displayName.toLowerCase());
        if (!declared) out.add(`s:${grant.siteGroup.id}`);
        for (const m of declared?.[1] ?? []) {
          if (m.includes('@')) out.add(`u:${m.toLowerCase()}`);
          else principal(m);
        }
      } else throw new Error(`the oracle does not model ${JSON.stringify(grant)}`);
    }
    return out;
  }

  function membersOf(groupId: string, seen = new Set<string>()): Set<string> {
    const out = new Set<string>();
    if (seen.has(groupId)) return out;
    seen.add(groupId);
    for (const m of g.groups.get(groupId)?.members ?? []) {
      const u = g.users.get(m);
      if (u?.mail) out.add(u.mail.toLowerCase());
      else if (g.groups.has(m)) for (const e of membersOf(m, seen)) out.add(e);
    }
    return out;
  }

  function siteGroupReaders(id: string): Set<string> {
    const out = new Set<string>();
    // Undeclared groups are read from SharePoint, which takes only certificate credentials.
    if (world.credential !== 'certificate') return out;
    for (const m of site.siteGroups.get(Number(id))?.members ?? []) {
      if ('user' in m) {
        const mail = g.users.get(m.user)?.mail;
        if (mail) out.add(mail.toLowerCase());
      } else if ('group' in m) for (const e of membersOf(m.group)) out.add(e);
      else if ('groupOwners' in m) {
        for (const o of g.groups.get(m.groupOwners)?.owners ?? []) {
          const mail = g.users.get(o)?.mail;
          if (mail) out.add(mail.toLowerCase());
        }
      }
      // Any other claims login ("Everyone…") reads nothing.
    }
    return out;
  }

  function readers(item: FakeItem): Set<string> {
    const out = new Set<string>();
    for (const k of grantees(item)) {
      if (k.startsWith('u:')) out.add(k.slice(2));
      else if (k.startsWith('g:')) for (const e of membersOf(k.slice(2))) out.add(e);
      else for (const e of siteGroupReaders(k.slice(2))) out.add(e);
    }
    return out;
  }

  const principalOf = (k: string) =>
    k.startsWith('u:') ? `user:${k.slice(2)}` : k.startsWith('g:') ? `sgroup:${sourceId}/${k.slice(2)}` : `sgroup:${sourceId}/sp:${site.collectionId}:${k.slice(2)}`;

  const liveFiles = () => [...g.items.values()].filter((i) => i.kind === 'file' && !i.deleted && (i.driveId === docs.id || i.driveId === archive.id));
  const docIdOf = (item: FakeItem) => documentIdFor(sourceId, sharepointExternalId(item.driveId, item.id));
  const label = (item: FakeItem) => `${g.drives.get(item.driveId)!.name}:${g.pathOf(item)}`;

  /** Every item ever created, by document id, so a leaked deleted document still gets a name. */
  function labelsByDocId(): Map<string, string> {
    const m = new Map<string, string>();
    for (const i of g.items.values()) if (i.kind === 'file') m.set(docIdOf(i), `${label(i)}${i.deleted ? ' (deleted)' : ''}`);
    return m;
  }

  /** Grantees per live file, to predict how many documents an incremental run must re-permission. */
  function snapshot(): Map<string, string> {
    return new Map(liveFiles().map((i) => [i.id, [...grantees(i)].sort().join(',')]));
  }

  function aclChanges(before: Map<string, string>, after: Map<string, string>): number {
    let n = 0;
    for (const [id, acl] of after) if (before.has(id) && before.get(id) !== acl) n++;
    return n;
  }

  /** Documents shared through undeclared SharePoint groups, and those shared no other way. */
  function siteGroupCounts(): { named: number; only: number } {
    let named = 0;
    let only = 0;
    for (const item of liveFiles()) {
      const keys = [...grantees(item)];
      const sg = keys.filter((k) => k.startsWith('s:')).length;
      if (sg > 0) named++;
      if (sg > 0 && sg === keys.length) only++;
    }
    return { named, only };
  }

  // ---- checks ---------------------------------------------------------------------------------------

  async function visibleTo(email: string): Promise<string[]> {
    const results = await search({ ctx: userCtx(h, email, []), input: { query: QUERY, topK: 100 } });
    expect(results.length).toBeLessThan(100); // the corpus is small enough that topK covers every chunk
    const names = labelsByDocId();
    return [...new Set(results.map((r) => names.get(r.documentId) ?? `unknown document ${r.documentId}`))].sort();
  }

  async function everyonesView(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const email of callers()) out[email] = await visibleTo(email);
    return out;
  }

  /** After every sync: each person sees exactly the oracle's set, and the registry mirrors the tenant. */
  async function assertConverged(): Promise<void> {
    const files = liveFiles();
    for (const email of callers()) {
      const expected = files.filter((i) => readers(i).has(email.toLowerCase())).map(label).sort();
      expect({ email, visible: await visibleTo(email) }).toEqual({ email, visible: expected });
    }
    const stored = await h.metadata.documents.list({ sourceId, limit: 1000 });
    expect(stored.map((d) => d.id).sort()).toEqual(files.map(docIdOf).sort());
    for (const item of files) {
      const doc = stored.find((d) => d.id === docIdOf(item))!;
      const expectedAcl = [...grantees(item)].map(principalOf).sort();
      expect({ file: label(item), status: doc.status, path: doc.path, acl: doc.acl })
        .toEqual({ file: label(item), status: 'indexed', path: g.pathOf(item), acl: expectedAcl });
      expect(doc.url).toBe(`${site.webUrl}/${encodeURIComponent(g.drives.get(item.driveId)!.name)}${g.pathOf(item).split('/').map(encodeURIComponent).join('/')}`);
      expect(await h.vectors.count({ documentId: doc.id })).toBe(doc.chunkCount);
    }
  }

  const SUMMARY = /^SharePoint groups: (\d+) documents? of this source .* \((\d+) of them only that way/;

  /** With a client secret every run counts the documents a certificate would open; otherwise it says nothing. */
  function assertSiteGroupSummary(run: Run): void {
    const { named, only } = siteGroupCounts();
    const summary = run.warnings.find((w) => SUMMARY.test(w));
    if (world.credential === 'secret' && named > 0) {
      expect(summary, run.warnings.join('\n')).toBeDefined();
      expect(SUMMARY.exec(summary!)!.slice(1).map(Number)).toEqual([named, only]);
      expect(summary).toMatch(/certificate/);
    } else {
      expect(summary).toBeUndefined();
    }
  }

  async function sync(mode?: RunMode): Promise<{ stats: RunStats; run: Run }> {
    const { runId } = await syncNow(h, sourceId, mode);
    const run = (await h.metadata.runs.get(runId))!;
    expect(run.status, run.error ?? '').toBe('succeeded');
    assertSiteGroupSummary(run);
    return { stats: run.stats, run };
  }

  const doc = async (item: FakeItem): Promise<DocumentRecord> => (await h.metadata.documents.byExternalId(sourceId, sharepointExternalId(item.driveId, item.id)))!;

  /** The document's live chunks, read from the vector store whoever may see them. */
  async function chunksOf(item: FakeItem): Promise<string[]> {
    const d = await doc(item);
    const [vector] = await h.embedder.embed([QUERY]);
    const hits = await h.vectors.search(vector!, buildPermissionFilter({ principals: d.acl, requestedSourceIds: [sourceId] }), 1000);
    return hits.filter((x) => x.point.documentId === d.id && x.point.generation === d.generation).map((x) => `${x.point.sectionPath.join(' > ')}\n${x.point.text}`);
  }

  // ---- the tenant -----------------------------------------------------------------------------------

  beforeAll(async () => {
    g = await startFakeGraph({ pageSize: 4 });
    alice = g.addUser('alice@contoso.test');
    bob = g.addUser('Bob@Contoso.test');
    carol = g.addUser('carol@contoso.test');
    dave = g.addUser('dave@contoso.test');
    erin = g.addUser('erin@contoso.test');
    frank = g.addUser('frank@contoso.test');
    grace = g.addUser('grace@contoso.test');
    // Nested: "All Finance" ⊃ "Finance Analysts" ⊃ erin.
    analysts = g.addGroup('Finance Analysts', [erin.id]);
    financeAll = g.addGroup('All Finance', [bob.id, analysts.id]);
    engineering = g.addGroup('Engineering', [dave.id, frank.id]);
    legal = g.addGroup('Legal', [carol.id]);
    // A Microsoft 365 group (what SharePoint lists as c:0o.c|federateddirectoryclaimprovider|<id>).
    partners = g.addGroup('Contoso Partners', [carol.id], { kind: 'unified', owners: [alice.id] });

    site = g.addSite('Contoso Intranet');
    const sg = (ref: string | number, roles?: string[]) => g.siteGroupGrant(site.id, ref, roles);
    let rootGrants: FakeGrant[];
    let archiveGrants: FakeGrant[];
    let financeGrants: FakeGrant[];
    let payrollGrants: FakeGrant[];
    if (world.layout === 'entra') {
      siteGroupMembers = { 'Contoso Intranet Visitors': [legal.id] };
      // Not declared by the admin: grants nothing with a client secret.
      g.addSiteGroupMember(site.id, 'Members', engineering.id);
      rootGrants = [{ user: alice.id, roles: ['owner'] }, { group: engineering.id }, sg('Visitors'), sg('Members')];
      archiveGrants = [{ user: alice.id, roles: ['owner'] }, { group: legal.id }];
      financeGrants = [{ user: alice.id, roles: ['owner'] }, { group: financeAll.id }];
      payrollGrants = [{ user: carol.id, roles: ['write'] }];
    } else {
      siteGroupMembers = {};
      g.addSiteGroupMember(site.id, 'Owners', alice.id);
      g.addSiteGroupMember(site.id, 'Members', engineering.id);
      g.addSiteGroupMember(site.id, 'Visitors', partners.id);
      g.addSiteGroupMember(site.id, 'Visitors', { login: 'c:0-.f|rolemanager|spo-grid-all-users/11111111-2222-3333-4444-555555555555', title: 'Everyone except external users' });
      const financeTeam = g.addSiteGroup(site.id, 'Finance Team', [financeAll.id, alice.id]);
      const payroll = g.addSiteGroup(site.id, 'Payroll', [carol.id]);
      const archiveReaders = g.addSiteGroup(site.id, 'Archive Readers', [legal.id, { groupOwners: partners.id }]);
      rootGrants = [sg('Owners', ['owner']), sg('Members', ['write']), sg('Visitors')];
      archiveGrants = [sg('Owners', ['owner']), sg(archiveReaders.id)];
      financeGrants = [sg(financeTeam.id, ['write'])];
      payrollGrants = [sg(payroll.id, ['write'])];
    }
    docs = g.addDrive(site.id, 'Documents', { permissions: rootGrants });
    archive = g.addDrive(site.id, 'Archive', { permissions: archiveGrants });

    f.welcome = g.addFile(docs.id, '/Welcome.md', '# Welcome to Contoso\n\nThe intranet of Contoso: start here.');
    f.budget = g.addFile(docs.id, '/Finance/Budget 2024.docx', await buildDocx([
      { heading: 1, text: 'Contoso budget 2024' },
      { text: 'Contoso plans to spend 4 million on cloud hosting.' },
    ]));
    f.forecast = g.addFile(docs.id, '/Finance/forecast.txt', 'Contoso revenue forecast: 12 percent growth next year.');
    f.salaries = g.addFile(docs.id, '/Finance/Payroll/salaries.md', '# Contoso salaries\n\nSalary bands for every Contoso role.');
    f.roadmap = g.addFile(docs.id, '/Projects/roadmap.md', roadmap(`Contoso integrates the assistant. ${words('assistant', 40)}`));
    f.vendors = g.addFile(docs.id, '/Projects/vendor-shortlist.txt', 'Contoso vendor shortlist: Fabrikam, Litware, Northwind.');
    f.idea = g.addFile(docs.id, '/Projects/Drafts/idea.txt', 'Contoso idea: a badge reader that also brews coffee.');
    f.outline = g.addFile(docs.id, '/Projects/Drafts/outline.md', '# Contoso outline\n\nDraft outline of the Contoso offsite.');
    f.prototype = g.addFile(docs.id, '/Projects/Skunkworks/prototype.md', '# Contoso prototype\n\nThe Contoso hover board prototype.');
    f.pressKit = g.addFile(docs.id, '/Shared/press-kit.txt', 'Contoso press kit: logos and boilerplate.');
    f.partnerBrief = g.addFile(docs.id, '/Shared/partner-brief.md', '# Contoso partner brief\n\nWhat Contoso partners need to know.');
    f.engHandbook = g.addFile(docs.id, '/Shared/eng-handbook.md', '# Contoso engineering handbook\n\nHow Contoso engineers ship.');
    f.annual = g.addFile(archive.id, '/2023/annual-report.docx', await buildDocx([
      { heading: 1, text: 'Contoso annual report 2023' },
      { text: 'Contoso grew in every region.' },
      { table: [['Region', 'Growth'], ['EMEA', '9%']] },
    ]));
    f.board = g.addFile(archive.id, '/2023/board-notes.md', '# Contoso board notes\n\nThe Contoso board approved the merger.');
    f.retention = g.addFile(archive.id, '/retention-policy.txt', 'Contoso keeps records for seven years.');

    // Broken inheritance: Finance for alice and the (nested) finance group; Payroll for carol alone
    // (alice, who can read Finance, cannot read Payroll); Skunkworks for dave alone; Shared for nobody.
    g.setPermissions(g.itemByPath(docs.id, '/Finance').id, financeGrants);
    g.setPermissions(g.itemByPath(docs.id, '/Finance/Payroll').id, payrollGrants);
    g.setPermissions(g.itemByPath(docs.id, '/Projects/Skunkworks').id, [{ user: dave.id }]);
    g.setPermissions(g.itemByPath(docs.id, '/Shared').id, []);
    // Links: a "specific people" link to bob (sharing breaks the file's inheritance, as in SharePoint),
    // anonymous and organization links that name no one, one organization link redeemed by erin,
    // and a specific-people link to a group.
    g.addLink(f.vendors.id, { scope: 'users', identities: [bob.id] });
    g.addLink(f.pressKit.id, { scope: 'anonymous' });
    g.addLink(f.pressKit.id, { scope: 'organization', type: 'edit' });
    g.addLink(f.partnerBrief.id, { scope: 'organization', identities: [erin.id] });
    g.addLink(f.engHandbook.id, { scope: 'users', identities: [engineering.id] });

    if (world.credential === 'certificate') cert = await g.addCertificate();
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN } });
    app = createApp(h, createAuthenticator(h.config));
  });

  afterAll(async () => {
    await h?.cleanup();
    await g?.close();
  });

  const sourceBody = () => {
    const { config, credentials } = g.sourceConfig({ siteIds: [site.id], siteGroupMembers }, { certificate: cert });
    return { name: 'intranet', type: 'sharepoint', config, credentials };
  };

  // ---- the scenario -----------------------------------------------------------------------------------

  it('refuses a source whose credentials are wrong, with an explanation and without the secret', async () => {
    const body = sourceBody();
    if (world.credential === 'secret') {
      const res = await req('/v1/sources', { body: { ...body, credentials: { ...body.credentials, clientSecret: 'not-the-secret-xyz' } } });
      expect(res.status).toBe(422);
      const problem = await res.json();
      expect(problem.detail).toMatch(/^connection test failed: Microsoft Graph rejected the credentials: invalid_client: AADSTS7000215: Invalid client secret/);
      expect(JSON.stringify(problem)).not.toContain('not-the-secret-xyz');
    } else {
      const stranger = await makeAppCertificate('CN=not-registered');
      const res = await req('/v1/sources', { body: { ...body, credentials: { clientId: g.clientId, certificate: stranger } } });
      expect(res.status).toBe(422);
      const problem = await res.json();
      expect(problem.detail).toMatch(/^connection test failed: Microsoft Graph rejected the credentials: invalid_client: AADSTS700027: The certificate .* is not registered/);
      expect(JSON.stringify(problem)).not.toContain('PRIVATE KEY');
    }
    expect((await (await req('/v1/sources')).json()).sources).toEqual([]);
  });

  it('registers the source through the API after a successful connection test', async () => {
    const res = await req('/v1/sources', { body: sourceBody() });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body).toMatchObject({ name: 'intranet', type: 'sharepoint', status: 'active', config: { tenantId: g.tenantId, siteGroupMembers } });
    expect(JSON.stringify(body)).not.toContain(g.clientSecret!);
    expect(JSON.stringify(body)).not.toContain('PRIVATE KEY');
    sourceId = body.id;
  });

  it('sync 1 (full): every file indexed with its effective permissions', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('full');
    const files = liveFiles();
    expect(stats).toMatchObject({ added: files.length, updated: 0, deleted: 0, failed: 0, skipped: 0, aclUpdated: 0 });
    const chunkTotal = (await Promise.all(files.map(doc))).reduce((n, d) => n + d.chunkCount, 0);
    expect(stats.chunksEmbedded).toBe(chunkTotal);
    expect((await doc(f.roadmap)).chunkCount).toBeGreaterThanOrEqual(4);
    await assertConverged();

    if (world.layout === 'entra') {
      // The undeclared SharePoint group is reported, not silently dropped.
      expect(run.warnings.join('\n')).toMatch(/Contoso Intranet Members.*grants nothing/);
    }
    if (world.layout === 'siteGroups') {
      // Most documents are shared through SharePoint groups only.
      const onlySiteGroups = liveFiles().filter((i) => [...grantees(i)].every((k) => k.startsWith('s:')) && grantees(i).size > 0);
      expect(onlySiteGroups.length).toBeGreaterThan(liveFiles().length / 2);
      if (world.credential === 'secret') {
        for (const email of callers()) for (const item of onlySiteGroups) expect(await visibleTo(email)).not.toContain(label(item));
      } else {
        expect(run.warnings.join('\n')).toMatch(/SharePoint group "Contoso Intranet Visitors": organisation-wide claim .* grants nothing/);
      }
    }
    // GET /v1/sources/:id carries what the run found.
    const shown = await (await req(`/v1/sources/${sourceId}`)).json();
    expect(shown.diagnostics).toMatchObject({ runId: run.id, warnings: run.warnings });

    // Spot checks of the trickier rules, on top of the oracle.
    if (resolves) {
      expect(await visibleTo(erin.mail!)).toEqual(['Documents:/Finance/Budget 2024.docx', 'Documents:/Finance/forecast.txt', 'Documents:/Shared/partner-brief.md']);
      expect(await visibleTo(alice.mail!)).toContain('Documents:/Finance/forecast.txt');
    }
    expect(await visibleTo(alice.mail!)).not.toContain('Documents:/Finance/Payroll/salaries.md');
    expect(await visibleTo(bob.mail!)).toContain('Documents:/Projects/vendor-shortlist.txt');
    for (const email of callers()) expect(await visibleTo(email)).not.toContain('Documents:/Shared/press-kit.txt');
    expect(await visibleTo(grace.mail!)).toEqual([]);
    expect(await visibleTo('mallory@contoso.test')).toEqual([]);
  });

  it('sync 2 (incremental): permission-only changes re-permission without embedding anything', async () => {
    const before = snapshot();
    // Break inheritance on a folder and drop Engineering's access from it (the Entra group, or the
    // SharePoint group it sits in); share a file with dave through a link; give frank access to the
    // whole Archive library at its root.
    const projects = g.itemByPath(docs.id, '/Projects');
    g.breakInheritance(projects.id);
    const members = String(g.siteGroup(site.id, 'Members').id);
    const engPerm = projects.own!.find((p) => world.layout === 'entra'
      ? 'group' in p.grant && p.grant.group === engineering.id
      : 'siteGroup' in p.grant && p.grant.siteGroup.id === members)!;
    g.removePermission(projects.id, engPerm.id);
    g.addLink(f.forecast.id, { scope: 'users', identities: [dave.id] });
    g.addPermission(g.mustItem(archive.rootId).id, { user: frank.id });
    const expectedAclChanges = aclChanges(before, snapshot());
    expect(expectedAclChanges).toBeGreaterThanOrEqual(5);

    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0, aclUpdated: expectedAclChanges });
    await assertConverged();
    expect(await visibleTo(frank.mail!)).toEqual(expect.arrayContaining(['Archive:/2023/annual-report.docx', 'Archive:/retention-policy.txt']));
    expect(await visibleTo(frank.mail!)).not.toContain('Documents:/Projects/roadmap.md');
  });

  it('sync 3 (incremental): a member removed from a nested group loses access with no re-embedding and no ACL rewrite', async () => {
    if (resolves) expect(await visibleTo(erin.mail!)).toContain('Documents:/Finance/Budget 2024.docx');
    g.removeGroupMember(analysts.id, erin.id);
    g.addGroupMember(analysts.id, grace.id);

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, aclUpdated: 0, added: 0, updated: 0, deleted: 0 });
    await assertConverged();
    expect(await visibleTo(erin.mail!)).toEqual(['Documents:/Shared/partner-brief.md']);
    if (resolves) expect(await visibleTo(grace.mail!)).toEqual(['Documents:/Finance/Budget 2024.docx', 'Documents:/Finance/forecast.txt']);
  });

  it('sync 4 (incremental): a SharePoint group membership change alone re-embeds nothing and changes visibility as SharePoint does', async () => {
    const viewBefore = await everyonesView();
    // Someone joins a custom group, someone leaves one, and the Microsoft 365 group inside Visitors
    // gains a member. In the "entra" world: the undeclared Members group gains someone.
    if (world.layout === 'siteGroups') {
      g.addSiteGroupMember(site.id, 'Payroll', grace.id);
      g.removeSiteGroupMember(site.id, 'Finance Team', alice.id);
      g.addGroupMember(partners.id, grace.id);
    } else {
      g.addSiteGroupMember(site.id, 'Members', grace.id);
    }

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, aclUpdated: 0, added: 0, updated: 0, deleted: 0, failed: 0 });
    await assertConverged();
    const viewAfter = await everyonesView();
    if (world.credential === 'certificate') {
      expect(viewAfter[grace.mail!]).toContain('Documents:/Finance/Payroll/salaries.md');
      expect(viewAfter[grace.mail!]).toContain('Documents:/Welcome.md');
      expect(viewAfter[alice.mail!]).not.toContain('Documents:/Finance/forecast.txt');
      expect(viewAfter).not.toEqual(viewBefore);
    } else {
      // Nothing the app cannot read changes anyone's view.
      expect(viewAfter).toEqual(viewBefore);
    }
  });

  it('sync 5 (incremental): editing one section of one file embeds only its changed chunks, through a 429', async () => {
    const oldChunks = new Set(await chunksOf(f.roadmap));
    g.updateContent(f.roadmap.id, roadmap(`Contoso postpones the assistant to next year. ${words('delay', 40)}`), { modifiedBy: bob.id });
    g.resetLog();
    g.throttleNext(1, 429, 1, /\/permissions/);

    const { stats } = await sync();
    expect(stats).toMatchObject({ updated: 1, added: 0, deleted: 0, aclUpdated: 0, failed: 0 });
    const newChunks = await chunksOf(f.roadmap);
    const changed = newChunks.filter((c) => !oldChunks.has(c)).length;
    expect(changed).toBeGreaterThan(0);
    expect(stats.chunksEmbedded).toBe(changed);
    expect(stats.chunksEmbedded).toBeLessThan((await doc(f.roadmap)).chunkCount);
    expect(newChunks.some((c) => c.includes('postpones'))).toBe(true);
    expect(newChunks.some((c) => c.includes('integrates'))).toBe(false);

    // The 429 was honoured: the same call came back only after Retry-After.
    const throttled = g.graphRequests().find((r) => r.status === 429)!;
    expect(throttled).toBeDefined();
    const retry = g.requests.find((r) => r !== throttled && r.path === throttled.path && r.startedAt >= throttled.endedAt)!;
    expect(retry.status).toBe(200);
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);
    await assertConverged();
  });

  it('sync 6 (incremental): renames and moves of files and folders update paths and permissions without embedding', async () => {
    const before = snapshot();
    const finance = g.itemByPath(docs.id, '/Finance');
    g.rename(f.forecast.id, 'forecast-2025.txt');
    g.move(f.idea.id, g.mustItem(docs.rootId).id); // leaves /Projects (no Engineering) for the root (Engineering)
    g.rename(g.itemByPath(docs.id, '/Projects/Skunkworks').id, 'Moonshot');
    g.move(g.itemByPath(docs.id, '/Projects/Drafts').id, finance.id); // its outline now inherits Finance's permissions
    const expectedAclChanges = aclChanges(before, snapshot());
    expect(expectedAclChanges).toBe(2);

    const { stats } = await sync();
    expect(stats).toMatchObject({ chunksEmbedded: 0, added: 0, updated: 0, deleted: 0, failed: 0, aclUpdated: expectedAclChanges });
    expect((await doc(f.forecast)).path).toBe('/Finance/forecast-2025.txt');
    expect((await doc(f.forecast)).title).toBe('forecast-2025.txt');
    expect((await doc(f.idea)).path).toBe('/idea.txt');
    expect((await doc(f.prototype)).path).toBe('/Projects/Moonshot/prototype.md');
    expect((await doc(f.outline)).path).toBe('/Finance/Drafts/outline.md');
    const results = await search({ ctx: userCtx(h, dave.mail!, []), input: { query: QUERY, topK: 100 } });
    expect(results.find((r) => r.documentId === docIdOf(f.prototype))?.url).toMatch(/\/Documents\/Projects\/Moonshot\/prototype\.md$/);
    await assertConverged();
  });

  it('sync 7 (incremental): a deleted file leaves the index and the vector store', async () => {
    const salaries = await doc(f.salaries);
    expect(await h.vectors.count({ documentId: salaries.id })).toBeGreaterThan(0);
    g.delete(f.salaries.id);

    const { stats } = await sync();
    expect(stats).toMatchObject({ deleted: 1, chunksEmbedded: 0, added: 0, updated: 0, aclUpdated: 0 });
    expect(await h.vectors.count({ documentId: salaries.id })).toBe(0);
    expect(await h.metadata.documents.byExternalId(sourceId, salaries.externalId)).toBeNull();
    await assertConverged();
  });

  it('sync 8: an expired delta token falls back to a full enumeration that converges, re-embedding only new content', async () => {
    const before = snapshot();
    g.expireDeltaTokens();
    f.kickoff = g.addFile(docs.id, '/Projects/kickoff.md', '# Contoso kickoff\n\nThe Contoso kickoff is on Monday.');
    g.setPermissions(g.itemByPath(docs.id, '/Projects/Moonshot').id, [{ user: dave.id }, { user: erin.id }]);
    g.delete(f.pressKit.id);
    const expectedAclChanges = aclChanges(before, snapshot());
    expect(expectedAclChanges).toBe(1);

    const { stats, run } = await sync();
    expect(run.mode).toBe('full');
    expect(run.warnings.join('\n')).toMatch(/delta cursor expired/);
    expect(stats).toMatchObject({ added: 1, updated: 0, deleted: 1, failed: 0, aclUpdated: expectedAclChanges });
    expect(stats.chunksEmbedded).toBe((await doc(f.kickoff)).chunkCount);
    await assertConverged();
    expect(await visibleTo(erin.mail!)).toContain('Documents:/Projects/Moonshot/prototype.md');
  });

  it('sync 9 (incremental from the fresh cursor): nothing changed, nothing done, still converged', async () => {
    const { stats, run } = await sync();
    expect(run.mode).toBe('incremental');
    expect(stats).toMatchObject({ added: 0, updated: 0, deleted: 0, aclUpdated: 0, chunksEmbedded: 0, failed: 0 });
    await assertConverged();
  });

  it('sync 10 (incremental): unlinking a nested group from its parent revokes through the whole chain', async () => {
    if (resolves) expect(await visibleTo(grace.mail!)).toContain('Documents:/Finance/Budget 2024.docx');
    g.removeGroupMember(financeAll.id, analysts.id);
    const { stats } = await sync();
    expect(stats).toMatchObject({ added: 0, updated: 0, deleted: 0, aclUpdated: 0, chunksEmbedded: 0 });
    await assertConverged();
    expect(await visibleTo(grace.mail!)).not.toContain('Documents:/Finance/Budget 2024.docx');
  });
});

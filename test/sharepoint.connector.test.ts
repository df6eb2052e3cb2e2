import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Change, ChangePage, ResolvedAcl } from '../src/connectors/interface.ts';
import {
  createSharePointConnector, sharepointConfigSchema, sharepointConnectorFactory, sharepointExternalId,
  type SharePointConnector, type GraphTuning,
} from '../src/connectors/sharepoint/index.ts';
import { CursorExpiredError, UpstreamError } from '../src/errors.ts';
import { startFakeGraph, type FakeDrive, type FakeGraph, type FakeGroup, type FakeItem, type FakeSite, type FakeUser } from './fakes/graph/index.ts';

const SOURCE = 'src-sp';

let g: FakeGraph;
let site: FakeSite;
let drive: FakeDrive;
let alice: FakeUser, bob: FakeUser, carol: FakeUser, dave: FakeUser;
let finance: FakeGroup;
let items: Record<string, FakeItem>;

beforeEach(async () => {
  g = await startFakeGraph({ pageSize: 3 });
  alice = g.addUser('Alice@Acme.test');
  bob = g.addUser('bob@acme.test');
  carol = g.addUser('carol@acme.test');
  dave = g.addUser('dave@acme.test');
  finance = g.addGroup('Finance', [bob.id]);
  site = g.addSite('Finance');
  drive = g.addDrive(site.id, 'Documents', {
    permissions: [{ user: alice.id, roles: ['owner'] }, { siteGroup: { id: '3', displayName: 'Finance Members' } }],
  });
  items = {
    readme: g.addFile(drive.id, '/readme.txt', 'Welcome to finance', { modifiedBy: alice.id }),
    q1: g.addFile(drive.id, '/Reports/q1.txt', 'Q1 revenue was 10', { modifiedBy: bob.id }),
    q2: g.addFile(drive.id, '/Reports/q2.txt', 'Q2 revenue was 12', { modifiedBy: bob.id }),
    plan: g.addFile(drive.id, '/Reports/Secret/plan.txt', 'Acquire Globex', { modifiedBy: carol.id }),
    notes: g.addFile(drive.id, '/Public/notes.md', '# Notes', { modifiedBy: alice.id }),
  };
  items.reports = g.itemByPath(drive.id, '/Reports');
  items.secret = g.itemByPath(drive.id, '/Reports/Secret');
  items.public = g.itemByPath(drive.id, '/Public');
  g.setPermissions(items.reports.id, [{ user: alice.id }, { group: finance.id }]);
  g.setPermissions(items.secret.id, [{ user: carol.id, roles: ['write'] }]);
});

afterEach(async () => {
  await g.close();
});

function connect(extra: Record<string, unknown> = {}, tuning?: GraphTuning): SharePointConnector {
  const { config, credentials } = g.sourceConfig({ siteIds: [site.id], ...extra });
  return createSharePointConnector({ sourceId: SOURCE, config, credentials, tuning });
}

async function collect(conn: SharePointConnector, opts: { cursor: string | null; full?: boolean }) {
  const pages: ChangePage[] = [];
  for await (const p of conn.changes({ cursor: opts.cursor, full: opts.full ?? false })) pages.push(p);
  const changes = pages.flatMap((p) => p.changes);
  const cursors = pages.map((p) => p.cursor).filter((c): c is string => c !== null);
  return { pages, changes, cursor: cursors[cursors.length - 1] ?? null };
}

type Upsert = Extract<Change, { kind: 'upsert' }>;
const upserts = (changes: Change[]) => changes.filter((c): c is Upsert => c.kind === 'upsert');
const byPath = (changes: Change[]) => new Map(upserts(changes).map((u) => [u.doc.path, u]));
const ext = (item: FakeItem) => sharepointExternalId(item.driveId, item.id);
const principals = (acl: ResolvedAcl) => [...acl.principals].sort();
/** A SharePoint group of the test site as a source-group principal. */
const siteGroupP = (id: number) => `sgroup:${SOURCE}/sp:${site.collectionId}:${id}`;

async function fullSync(conn = connect()) {
  return collect(conn, { cursor: null, full: true });
}

describe('SharePoint connector: enumeration', () => {
  it('pages through delta, emits one upsert per file with its metadata, and downloads through the redirect', async () => {
    const conn = connect();
    const { pages, changes, cursor } = await fullSync(conn);
    // 5 files + root + 3 folders, 3 per Graph page → several pages, cursor only on the last.
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.slice(0, -1).every((p) => p.cursor === null)).toBe(true);
    expect(cursor).not.toBeNull();

    const docs = byPath(changes);
    expect([...docs.keys()].sort()).toEqual(['/Public/notes.md', '/Reports/Secret/plan.txt', '/Reports/q1.txt', '/Reports/q2.txt', '/readme.txt']);
    expect(changes.every((c) => c.kind === 'upsert')).toBe(true);

    const q1 = docs.get('/Reports/q1.txt')!;
    expect(q1.doc).toMatchObject({
      externalId: ext(items.q1),
      title: 'q1.txt',
      mimeType: 'text/plain',
      owner: 'bob@acme.test',
      size: Buffer.byteLength('Q1 revenue was 10'),
    });
    expect(q1.doc.url).toMatch(/\/sites\/finance\/Documents\/Reports\/q1\.txt$/);
    expect(q1.doc.contentVersion).toMatch(/^qxh:/);
    expect(q1.doc.lastModified).toBeInstanceOf(Date);
    expect(docs.get('/readme.txt')!.doc.owner).toBe('alice@acme.test');

    const fetched = await q1.fetch();
    expect(fetched.bytes.toString()).toBe('Q1 revenue was 10');
    expect(fetched.mimeType).toBe('text/plain');
    const contentCall = g.requests.find((r) => r.path.endsWith(`/items/${items.q1.id}/content`))!;
    expect(contentCall.status).toBe(302);
    const download = g.requests.find((r) => r.kind === 'download')!;
    expect(download.status).toBe(200);
    expect(download.authorization).toBe(false); // the pre-authenticated URL never gets our token

    const deltaCalls = g.graphRequests(/\/root\/delta/);
    expect(deltaCalls.length).toBe(pages.length); // no folder walks in a full enumeration
    expect(deltaCalls.every((r) => r.prefer?.includes('deltashowremovedasdeleted'))).toBe(true);
  });

  it('commits a cursor at the end of each library, carrying only finished libraries', async () => {
    const second = g.addDrive(site.id, 'Archive', { permissions: [{ user: dave.id }] });
    g.addFile(second.id, '/old.txt', 'old');
    const { pages } = await fullSync();
    const cursors = pages.map((p) => p.cursor).filter((c): c is string => c !== null);
    expect(cursors).toHaveLength(2);
    expect(Object.keys(JSON.parse(cursors[0]!).drives)).toEqual([drive.id]);
    expect(Object.keys(JSON.parse(cursors[1]!).drives).sort()).toEqual([drive.id, second.id].sort());
    const old = byPath(pages.flatMap((p) => p.changes)).get('/old.txt')!;
    expect(old.acl.principals).toEqual(['user:dave@acme.test']);
  });

  it('a configured driveId is synced without siteIds', async () => {
    const { config, credentials } = g.sourceConfig({ driveIds: [drive.id] });
    const conn = createSharePointConnector({ sourceId: SOURCE, config, credentials });
    const { changes } = await collect(conn, { cursor: null });
    expect(upserts(changes)).toHaveLength(5);
  });
});

describe('SharePoint connector: permissions', () => {
  it('applies inherited permissions, and an item with broken inheritance keeps only its own', async () => {
    const docs = byPath((await fullSync()).changes);
    // Inherited from the library root: alice, and the SharePoint group, which a client secret
    // cannot expand: its principal is there (it will get no members) and the grant is reported.
    const readme = docs.get('/readme.txt')!;
    expect(principals(readme.acl)).toEqual([siteGroupP(3), 'user:alice@acme.test']);
    expect(readme.acl.problems?.join(' ')).toMatch(/SharePoint group "Finance Members" grants nothing.*certificate/);
    // /Reports has its own set (alice + Entra group); its files inherit it.
    const group = `sgroup:${SOURCE}/${finance.id}`;
    expect(principals(docs.get('/Reports/q1.txt')!.acl)).toEqual([group, 'user:alice@acme.test']);
    expect(principals(docs.get('/Reports/q2.txt')!.acl)).toEqual([group, 'user:alice@acme.test']);
    // /Reports/Secret broke inheritance: only carol, nothing from /Reports or the root.
    expect(principals(docs.get('/Reports/Secret/plan.txt')!.acl)).toEqual(['user:carol@acme.test']);
  });

  it('a SharePoint group grants what the admin declared in siteGroupMembers', async () => {
    const conn = connect({ siteGroupMembers: { 'finance members': [finance.id, 'Erin@Acme.test'] } });
    const acl = byPath((await fullSync(conn)).changes).get('/readme.txt')!.acl;
    expect(principals(acl)).toEqual([`sgroup:${SOURCE}/${finance.id}`, 'user:alice@acme.test', 'user:erin@acme.test']);
    expect(acl.problems ?? []).toEqual([]);
    const groups = [];
    for await (const m of conn.groups()) groups.push(m.groupId);
    expect(groups).toEqual([finance.id]);
  });

  it('sharing links grant only the identities listed on them, never their scope', async () => {
    const file = g.addFile(drive.id, '/Links/shared.txt', 'shared');
    g.setPermissions(g.itemByPath(drive.id, '/Links').id, []);
    g.addLink(file.id, { scope: 'anonymous', type: 'view' });
    g.addLink(file.id, { scope: 'organization', type: 'edit' });
    let acl = byPath((await fullSync()).changes).get('/Links/shared.txt')!.acl;
    expect(acl.principals).toEqual([]);

    g.addLink(file.id, { scope: 'users', identities: [dave.id, finance.id] });
    g.addLink(file.id, { scope: 'organization', identities: [carol.id] });
    acl = byPath((await fullSync()).changes).get('/Links/shared.txt')!.acl;
    expect(principals(acl)).toEqual([`sgroup:${SOURCE}/${finance.id}`, 'user:carol@acme.test', 'user:dave@acme.test']);
  });

  it('looks users up by id when the permission carries no email, once per user', async () => {
    g.setPermissions(items.q1.id, [{ user: dave.id, withEmail: false }]);
    g.setPermissions(items.q2.id, [{ user: dave.id, withEmail: false }]);
    const docs = byPath((await fullSync()).changes);
    expect(docs.get('/Reports/q1.txt')!.acl.principals).toEqual(['user:dave@acme.test']);
    expect(docs.get('/Reports/q2.txt')!.acl.principals).toEqual(['user:dave@acme.test']);
    expect(g.graphRequests(new RegExp(`/users/${dave.id}`))).toHaveLength(1);
  });

  it('grants nothing for what it cannot resolve, and says why', async () => {
    const ghost = g.addUser('ghost@acme.test', { noMail: true });
    g.removeUser(ghost.id); // still named by the permission, gone from the directory
    g.setPermissions(items.q1.id, [
      { siteGroup: { id: '7', displayName: 'Visitors' } },
      { raw: { roles: ['read'], grantedToV2: { application: { id: 'app-1', displayName: 'Some app' } } } },
      { user: ghost.id, withEmail: false },
      { siteUser: 'c:0-.f|rolemanager|spo-grid-all-users/11111111-2222-3333-4444-555555555555' },
      { raw: { roles: [], grantedToV2: { user: { id: alice.id, email: 'alice@acme.test' } } } },
      { raw: { roles: ['read'] } },
      { siteUser: 'i:0#.f|membership|erin@acme.test' },
      { raw: { roles: ['read'], expirationDateTime: '2001-01-01T00:00:00Z', grantedToV2: { user: { email: 'old@acme.test' } } } },
    ]);
    const acl = byPath((await fullSync()).changes).get('/Reports/q1.txt')!.acl;
    // Only the claims login resolves; the SharePoint group stays a member-less group (client
    // secret); everything else grants nothing.
    expect(principals(acl)).toEqual([siteGroupP(7), 'user:erin@acme.test']);
    const problems = acl.problems ?? [];
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/Visitors/);
    expect(problems.join('\n')).toMatch(/unsupported grantee \(application\)/);
    expect(problems.join('\n')).toMatch(new RegExp(`user ${ghost.id} has no resolvable email`));
    expect(problems.join('\n')).toMatch(/organisation-wide claim/);
    expect(problems.join('\n')).toMatch(/no roles/);
    expect(problems.join('\n')).toMatch(/names no grantee/);
  });

  it('a failed permission read fails closed for that item only', async () => {
    g.failRequests(new RegExp(`/items/${items.q1.id}/permissions`), 403);
    const docs = byPath((await fullSync()).changes);
    const q1 = docs.get('/Reports/q1.txt')!;
    expect(q1.acl.principals).toEqual([]);
    expect(q1.acl.problems?.[0]).toMatch(/permissions could not be read.*403/);
    expect(docs.get('/Reports/q2.txt')!.acl.principals.length).toBeGreaterThan(0);
  });
});

describe('SharePoint connector: incremental sync', () => {
  it('returns only what changed since the cursor, without re-reading unchanged folders', async () => {
    const first = await fullSync();
    const before = byPath(first.changes).get('/Reports/q1.txt')!.doc.contentVersion;
    g.updateContent(items.q1.id, 'Q1 revenue was 11 (restated)');
    g.addFile(drive.id, '/Public/new.txt', 'fresh');
    g.resetLog();

    const { changes, cursor } = await collect(connect(), { cursor: first.cursor });
    expect(cursor).not.toBeNull();
    const docs = byPath(changes);
    expect([...docs.keys()].sort()).toEqual(['/Public/new.txt', '/Reports/q1.txt']);
    expect(changes).toHaveLength(2);
    const q1 = docs.get('/Reports/q1.txt')!;
    expect(q1.doc.contentVersion).not.toBe(before);
    expect((await q1.fetch()).bytes.toString()).toBe('Q1 revenue was 11 (restated)');
    // Delta re-reports the ancestors (root, /Reports, /Public) but their fingerprints did not change.
    expect(g.graphRequests(/\/children/)).toHaveLength(0);

    const again = await collect(connect(), { cursor });
    expect(again.changes).toHaveLength(0);
  });

  it('reports deleted files, and the files of a deleted folder', async () => {
    const first = await fullSync();
    g.delete(items.q2.id);
    g.delete(items.public.id);
    const { changes } = await collect(connect(), { cursor: first.cursor });
    const deleted = changes.filter((c) => c.kind === 'delete').map((c) => (c as { externalId: string }).externalId);
    expect(deleted).toEqual(expect.arrayContaining([ext(items.q2), ext(items.notes)]));
    expect(upserts(changes)).toHaveLength(0);
  });

  it('a rename or move is an upsert with a new path and the same contentVersion', async () => {
    const first = byPath((await fullSync()).changes);
    const conn = connect();
    const cursor = (await fullSync(conn)).cursor;
    g.rename(items.readme.id, 'README.txt');
    g.move(items.q2.id, items.public.id);
    const { changes } = await collect(connect(), { cursor });
    const docs = byPath(changes);
    expect([...docs.keys()].sort()).toEqual(['/Public/q2.txt', '/README.txt']);
    expect(docs.get('/README.txt')!.doc.title).toBe('README.txt');
    expect(docs.get('/README.txt')!.doc.contentVersion).toBe(first.get('/readme.txt')!.doc.contentVersion);
    expect(docs.get('/Public/q2.txt')!.doc.contentVersion).toBe(first.get('/Reports/q2.txt')!.doc.contentVersion);
    // Moved out of /Reports into /Public: it now inherits the root's permissions.
    expect(principals(docs.get('/Public/q2.txt')!.acl)).toEqual([siteGroupP(3), 'user:alice@acme.test']);
  });

  it('renaming a folder re-emits every file below it with its new path, without new content versions', async () => {
    const first = await fullSync();
    const versions = new Map(upserts(first.changes).map((u) => [u.doc.externalId, u.doc.contentVersion]));
    g.rename(items.reports.id, 'Quarterly');
    const { changes } = await collect(connect(), { cursor: first.cursor });
    const docs = byPath(changes);
    expect([...docs.keys()].sort()).toEqual(['/Quarterly/Secret/plan.txt', '/Quarterly/q1.txt', '/Quarterly/q2.txt']);
    for (const u of docs.values()) expect(u.doc.contentVersion).toBe(versions.get(u.doc.externalId));
  });

  it('a permission change on a folder yields acl changes for the files below it', async () => {
    const first = await fullSync();
    g.setPermissions(items.reports.id, [{ user: dave.id }]);
    g.resetLog();
    const { changes } = await collect(connect(), { cursor: first.cursor });
    expect(upserts(changes)).toHaveLength(0);
    const acls = new Map(changes.filter((c) => c.kind === 'acl').map((c) => [(c as { externalId: string }).externalId, (c as { acl: ResolvedAcl }).acl]));
    expect(principals(acls.get(ext(items.q1))!)).toEqual(['user:dave@acme.test']);
    expect(principals(acls.get(ext(items.q2))!)).toEqual(['user:dave@acme.test']);
    // The sub-folder has its own permissions: re-read, and still only carol.
    expect(principals(acls.get(ext(items.plan))!)).toEqual(['user:carol@acme.test']);
    expect(acls.has(ext(items.readme))).toBe(false);
    expect(g.graphRequests(/\/children/).length).toBeGreaterThan(0);
  });

  it('a sub-folder renamed while its parent changed permissions still gets its new paths', async () => {
    const first = await fullSync();
    g.setPermissions(items.reports.id, [{ user: dave.id }]);
    g.rename(items.secret.id, 'Hidden');
    const { changes } = await collect(connect(), { cursor: first.cursor });
    const docs = byPath(changes);
    expect([...docs.keys()]).toEqual(['/Reports/Hidden/plan.txt']);
    const acls = changes.filter((c) => c.kind === 'acl').map((c) => (c as { externalId: string }).externalId);
    expect(acls).toEqual(expect.arrayContaining([ext(items.q1), ext(items.q2)]));
  });

  it('restoring inheritance on a folder is picked up the same way', async () => {
    const first = await fullSync();
    g.resetInheritance(items.secret.id);
    const { changes } = await collect(connect(), { cursor: first.cursor });
    const plan = changes.find((c) => c.kind === 'acl' && c.externalId === ext(items.plan)) as { acl: ResolvedAcl } | undefined;
    expect(principals(plan!.acl)).toEqual([`sgroup:${SOURCE}/${finance.id}`, 'user:alice@acme.test']);
  });

  it('an expired delta token raises CursorExpiredError, and so does an unreadable cursor', async () => {
    const first = await fullSync();
    g.expireDeltaTokens();
    await expect(collect(connect(), { cursor: first.cursor })).rejects.toBeInstanceOf(CursorExpiredError);
    await expect(collect(connect(), { cursor: 'not json' })).rejects.toBeInstanceOf(CursorExpiredError);
    // A full run then works and gives a fresh cursor.
    const again = await fullSync();
    expect(upserts(again.changes)).toHaveLength(5);
    await expect(collect(connect(), { cursor: again.cursor })).resolves.toBeTruthy();
  });
});

describe('SharePoint connector: groups', () => {
  it('expands Entra groups transitively, page by page', async () => {
    const auditors = g.addGroup('Auditors', [carol.id]);
    const nested = g.addGroup('Inner', [auditors.id, dave.id]);
    g.addGroupMember(finance.id, nested.id);
    for (let i = 0; i < 4; i++) g.addGroupMember(finance.id, g.addUser(`temp${i}@acme.test`).id);
    const conn = connect();
    await fullSync(conn);
    const groups = [];
    for await (const m of conn.groups()) if (m.groupId === finance.id) groups.push(m);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.memberEmails).toEqual(['bob@acme.test', 'carol@acme.test', 'dave@acme.test', 'temp0@acme.test', 'temp1@acme.test', 'temp2@acme.test', 'temp3@acme.test']);
    expect(g.graphRequests(/transitiveMembers\/microsoft\.graph\.user/).length).toBeGreaterThan(1);
  });

  it('an incremental run with no ACL change still refreshes groups remembered in the cursor', async () => {
    const { cursor } = await fullSync();
    g.removeGroupMember(finance.id, bob.id);
    g.addGroupMember(finance.id, carol.id);
    const conn = connect({ groupIds: ['configured-group'] });
    const { changes } = await collect(conn, { cursor });
    expect(changes).toHaveLength(0);
    const extra = g.addGroup('Known', [dave.id]);
    const groups = new Map<string, string[]>();
    for await (const m of conn.groups({ knownGroupIds: [extra.id] })) groups.set(m.groupId, m.memberEmails);
    expect(groups.get(finance.id)).toEqual(['carol@acme.test']);
    expect(groups.get(extra.id)).toEqual(['dave@acme.test']);
    // A group Graph does not know has no members (fail closed), rather than failing the run.
    expect(groups.get('configured-group')).toEqual([]);
  });
});

describe('SharePoint connector: throttling, concurrency and tokens', () => {
  it('waits out a 429 Retry-After before calling Graph again, then succeeds', async () => {
    g.throttleNext(1, 429, 1, /\/permissions/);
    const { changes } = await fullSync();
    expect(upserts(changes)).toHaveLength(5);
    const throttled = g.graphRequests().find((r) => r.status === 429)!;
    const retry = g.requests.find((r) => r.path === throttled.path && r.startedAt > throttled.endedAt)!;
    expect(retry.status).toBe(200);
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);
    // The whole tenant pauses: apart from calls already on the wire when the 429 arrived, nothing
    // starts before Retry-After has passed.
    const during = g.requests.filter((r) => r.kind !== 'token' && r.startedAt > throttled.endedAt + 250 && r.startedAt < throttled.endedAt + 950);
    expect(during).toEqual([]);
  });

  it('honours 503 with Retry-After the same way', async () => {
    g.throttleNext(2, 503, 1, /\/root\/delta/);
    const t0 = Date.now();
    const { changes } = await fullSync();
    expect(upserts(changes)).toHaveLength(5);
    expect(g.graphRequests(/\/root\/delta/).filter((r) => r.status === 503)).toHaveLength(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  });

  it('gives up after its retry budget with a retryable UpstreamError carrying Retry-After', async () => {
    g.throttleNext(10, 429, 1);
    const err = await collect(connect({}, { maxAttempts: 2 }), { cursor: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 1 });
  });

  it('does not sleep through a Retry-After longer than it is willing to wait', async () => {
    g.throttleNext(1, 429, 120);
    const t0 = Date.now();
    const err = await collect(connect({}, { maxRetryAfterSeconds: 30 }), { cursor: null }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err).toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 120 });
  });

  it('keeps at most maxConcurrency requests in flight per tenant', async () => {
    for (let i = 0; i < 12; i++) g.addFile(drive.id, `/Bulk/file${i}.txt`, `bulk ${i}`);
    g.pageSize = 20;
    g.latencyMs = 25;
    const conn = connect({ maxConcurrency: 3 });
    const { changes } = await fullSync(conn);
    expect(upserts(changes)).toHaveLength(17);
    expect(g.maxInFlight).toBeLessThanOrEqual(3);
    expect(g.maxInFlight).toBeGreaterThanOrEqual(2); // the page's permission reads do run in parallel
    expect(conn.graph.limiter.maxActive).toBeLessThanOrEqual(3);
  });

  it('caches the token, and fetches a new one when Graph rejects it', async () => {
    const conn = connect();
    const { cursor } = await fullSync(conn);
    expect(conn.tokens.tokenRequests).toBe(1);
    g.expireAccessTokens();
    g.updateContent(items.q1.id, 'changed');
    const { changes } = await collect(conn, { cursor });
    expect(upserts(changes).map((u) => u.doc.path)).toEqual(['/Reports/q1.txt']);
    expect(conn.tokens.tokenRequests).toBe(2);
    expect(g.graphRequests().some((r) => r.status === 401)).toBe(true);
  });

  it('a throttled token endpoint is a retryable error carrying its Retry-After', async () => {
    g.throttleTokenEndpoint(1, 503, 7);
    const err = await collect(connect(), { cursor: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: true, status: 503 });
    expect((err as UpstreamError).retryAfterSeconds).toBeGreaterThanOrEqual(6);
    expect((err as UpstreamError).retryAfterSeconds).toBeLessThanOrEqual(7);
  });

  it('refuses downloads above maxFileBytes but still emits the file', async () => {
    const conn = connect({ maxFileBytes: 10 });
    const q1 = byPath((await fullSync(conn)).changes).get('/Reports/q1.txt')!;
    expect(q1.doc.size).toBeGreaterThan(10);
    const err = await q1.fetch().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: false });
    expect((err as Error).message).toMatch(/larger than the 10-byte limit/);
  });
});

describe('SharePoint connector: test() and configuration', () => {
  it('passes with valid credentials and existing sites and drives', async () => {
    await expect(connect({ driveIds: [drive.id] }).test()).resolves.toBeUndefined();
  });

  it('explains rejected credentials and unknown tenants', async () => {
    const { config } = g.sourceConfig({ siteIds: [site.id] });
    const bad = createSharePointConnector({ sourceId: SOURCE, config, credentials: { clientId: g.clientId, clientSecret: 'wrong' } });
    await expect(bad.test()).rejects.toThrow(/^Microsoft Graph rejected the credentials: invalid_client: AADSTS7000215: Invalid client secret/);
    const badApp = createSharePointConnector({ sourceId: SOURCE, config, credentials: { clientId: 'nope', clientSecret: g.clientSecret } });
    await expect(badApp.test()).rejects.toThrow(/rejected the credentials: unauthorized_client: AADSTS700016/);
    const otherTenant = createSharePointConnector({ sourceId: SOURCE, config: { ...config, tenantId: 'other-tenant' }, credentials: g.sourceConfig().credentials });
    await expect(otherTenant.test()).rejects.toThrow(/AADSTS90002: Tenant 'other-tenant' not found/);
    // The secret never appears in what the admin sees.
    await expect(bad.test()).rejects.not.toThrow(/wrong/);
  });

  it('names the site or drive that does not exist', async () => {
    await expect(connect({ siteIds: ['acme.sharepoint.test,missing,missing'] }).test()).rejects.toThrow('site acme.sharepoint.test,missing,missing not found');
    await expect(connect({ driveIds: ['b!nope'] }).test()).rejects.toThrow('drive b!nope not found');
    await expect(collect(connect({ siteIds: ['acme.sharepoint.test,missing,missing'] }), { cursor: null })).rejects.toThrow(/not found/);
  });

  it('validates config and credentials', () => {
    expect(sharepointConfigSchema.safeParse({ tenantId: 't' }).success).toBe(false);
    expect(sharepointConfigSchema.safeParse({ tenantId: 't', siteIds: ['s'], graphBaseUrl: 'nope' }).success).toBe(false);
    // MSAL and the Graph client only talk to https endpoints.
    expect(sharepointConfigSchema.safeParse({ tenantId: 't', siteIds: ['s'], graphBaseUrl: 'http://graph.example.test' }).success).toBe(false);
    expect(sharepointConfigSchema.safeParse({ tenantId: 't', siteIds: ['s'], authorityHost: 'http://login.example.test' }).success).toBe(false);
    const parsed = sharepointConfigSchema.parse({ tenantId: 't', driveIds: ['d'] });
    expect(parsed.graphBaseUrl).toBe('https://graph.microsoft.com');
    expect(parsed.authorityHost).toBe('https://login.microsoftonline.com');
    expect(() => sharepointConnectorFactory({ sourceId: SOURCE, config: { tenantId: 't', driveIds: ['d'] }, credentials: null })).toThrow(/clientId, clientSecret/);
    const conn = sharepointConnectorFactory({ sourceId: SOURCE, ...g.sourceConfig({ siteIds: [site.id] }) });
    expect(conn.type).toBe('sharepoint');
    expect(conn.enumeratesEverything).toBe(false);
  });
});

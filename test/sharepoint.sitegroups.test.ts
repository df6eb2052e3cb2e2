import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Change, ChangePage, ResolvedAcl } from '../src/connectors/interface.ts';
import { createSharePointConnector, sharepointConnectorFactory, type GraphTuning, type SharePointConnector } from '../src/connectors/sharepoint/index.ts';
import { readCollection } from '../src/connectors/sharepoint/rest.ts';
import { CursorExpiredError, UpstreamError } from '../src/errors.ts';
import { makeAppCertificate, startFakeGraph, type AppCertificateFixture, type FakeDrive, type FakeGraph, type FakeGroup, type FakeItem, type FakeSite, type FakeUser } from './fakes/graph/index.ts';
import { siteRest } from './fakes/graph/sharepoint.ts';

/**
 * Certificate credentials (MSAL client assertions against the fake Entra token endpoint) and
 * SharePoint site groups (SharePoint REST, expanded through Graph), on a group-connected site.
 */

const SOURCE = 'src-sg';

let g: FakeGraph;
let cert: AppCertificateFixture;
let site: FakeSite;
let drive: FakeDrive;
let alice: FakeUser, bob: FakeUser, carol: FakeUser, dave: FakeUser, erin: FakeUser, frank: FakeUser, gus: FakeUser;
let marketing: FakeGroup, auditors: FakeGroup, interns: FakeGroup;
let f: Record<string, FakeItem>;

beforeEach(async () => {
  g = await startFakeGraph({ pageSize: 3 });
  cert = await g.addCertificate();
  alice = g.addUser('alice@acme.test');
  bob = g.addUser('bob@acme.test');
  carol = g.addUser('carol@acme.test');
  dave = g.addUser('dave@acme.test');
  erin = g.addUser('erin@acme.test');
  frank = g.addUser('frank@acme.test');
  gus = g.addUser('gus@acme.test', { noMail: true }); // SharePoint lists no Email: the UPN is used
  // The site's Microsoft 365 group: members bob and a nested security group; owner alice.
  interns = g.addGroup('Interns', [erin.id]);
  marketing = g.addGroup('Marketing', [bob.id, interns.id], { kind: 'unified', owners: [alice.id] });
  auditors = g.addGroup('Auditors', [carol.id]);
  site = g.addSite('Marketing', { group: marketing.id });
  g.addSiteGroupMember(site.id, 'Visitors', auditors.id);
  const board = g.addSiteGroup(site.id, 'Board', [dave.id, frank.id, gus.id]);
  g.addSiteGroupMember(site.id, board.id, { login: 'c:0-.f|rolemanager|spo-grid-all-users/11111111-2222-3333-4444-555555555555', title: 'Everyone except external users' });
  drive = g.addDrive(site.id, 'Documents', {
    permissions: [g.siteGroupGrant(site.id, 'Owners', ['owner']), g.siteGroupGrant(site.id, 'Members', ['write']), g.siteGroupGrant(site.id, 'Visitors')],
  });
  f = {
    plan: g.addFile(drive.id, '/plan.md', '# Plan'),
    minutes: g.addFile(drive.id, '/Board/minutes.md', '# Minutes'),
    memo: g.addFile(drive.id, '/Board/memo.md', '# Memo'),
  };
  g.setPermissions(g.itemByPath(drive.id, '/Board').id, [g.siteGroupGrant(site.id, 'Board'), { user: alice.id }]);
  g.setPermissions(f.memo.id, [g.siteGroupGrant(site.id, 'Board')]);
});

afterEach(async () => {
  await g.close();
});

function connect(extra: Record<string, unknown> = {}, opts: { secret?: boolean; tuning?: GraphTuning } = {}): SharePointConnector {
  const { config, credentials } = g.sourceConfig({ siteIds: [site.id], ...extra }, opts.secret ? {} : { certificate: cert });
  return createSharePointConnector({ sourceId: SOURCE, config, credentials, tuning: opts.tuning });
}

async function collect(conn: SharePointConnector, cursor: string | null = null) {
  const pages: ChangePage[] = [];
  for await (const p of conn.changes({ cursor, full: cursor === null })) pages.push(p);
  const changes = pages.flatMap((p) => p.changes);
  const cursors = pages.map((p) => p.cursor).filter((c): c is string => c !== null);
  return { pages, changes, warnings: pages.flatMap((p) => p.warnings ?? []), cursor: cursors[cursors.length - 1] ?? null };
}

async function memberships(conn: SharePointConnector, knownGroupIds?: string[]) {
  const out = new Map<string, string[]>();
  for await (const m of conn.groups({ knownGroupIds })) out.set(m.groupId, m.memberEmails);
  return out;
}

const key = (id: number) => `sp:${site.collectionId}:${id}`;
const principal = (id: number) => `sgroup:${SOURCE}/${key(id)}`;
type Upsert = Extract<Change, { kind: 'upsert' }>;
const aclOf = (changes: Change[], item: FakeItem): ResolvedAcl =>
  (changes.find((c) => (c.kind === 'upsert' ? c.doc.externalId : c.kind === 'acl' ? c.externalId : '') === `${item.driveId}:${item.id}`) as Upsert).acl;

describe('certificate credentials through MSAL', () => {
  it('signs a client assertion the tenant accepts, gets one token per resource, and never calls discovery', async () => {
    const fetched: string[] = [];
    const recording: typeof fetch = (input, init) => {
      fetched.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      return fetch(input, init);
    };
    const conn = connect({}, { tuning: { fetch: recording } });
    await conn.test();
    await collect(conn);
    await memberships(conn);

    const tokens = g.tokenRequests();
    expect(tokens.map((t) => t.token)).toEqual([
      { credential: 'certificate', resource: g.url },
      { credential: 'certificate', resource: g.sharepointUrl },
    ]);
    expect(conn.tokens.tokenRequests).toBe(2);
    // authorityHost taken as given: no instance discovery, no OpenID configuration, nothing elsewhere.
    expect(fetched.every((u) => u.startsWith(`${g.url}/`) || u.startsWith(`${g.sharepointUrl}/`))).toBe(true);
    expect(fetched.some((u) => /discovery|well-known/.test(u))).toBe(false);

    // MSAL's cache serves the second run.
    await collect(conn);
    expect(conn.tokens.tokenRequests).toBe(2);
  });

  it('a certificate the app does not know is refused with the reason, without key material', async () => {
    const stranger = await makeAppCertificate('CN=not-registered');
    const { config } = g.sourceConfig({ siteIds: [site.id] });
    const conn = createSharePointConnector({ sourceId: SOURCE, config, credentials: { clientId: g.clientId, certificate: stranger } });
    const err = (await conn.test().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^Microsoft Graph rejected the credentials: invalid_client: AADSTS700027: The certificate with identifier used to sign the client assertion is not registered/);
    expect(err.message).not.toContain('PRIVATE KEY');
  });

  it('checks the key pair when the source is configured', async () => {
    const other = await makeAppCertificate('CN=other');
    const { config } = g.sourceConfig({ siteIds: [site.id] });
    const make = (certificate: Record<string, string>) => () =>
      sharepointConnectorFactory({ sourceId: SOURCE, config, credentials: { clientId: g.clientId, certificate } });
    expect(make({ privateKeyPem: other.privateKeyPem, certificatePem: cert.certificatePem })).toThrow(/does not belong to/);
    expect(make({ privateKeyPem: cert.privateKeyPem, certificatePem: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----' })).toThrow(/not a readable X.509/);
    expect(make({ privateKeyPem: 'secret', certificatePem: cert.certificatePem })).toThrow(/certificate/);
    expect(make({ ...cert })).not.toThrow();
  });

  it('a SharePoint that refuses the app fails the connection test with what to grant', async () => {
    g.failRequests(/\/_api\//, 403, { message: 'Access denied.' });
    await expect(connect().test()).rejects.toThrow(/SharePoint REST on .*refused the app .*403.*Sites\.Read\.All/);
  });
});

describe('SharePoint site groups with a certificate', () => {
  it('become source groups, expanded through SharePoint REST and Graph: Entra and Microsoft 365 groups transitively, owners, users', async () => {
    const conn = connect();
    const { changes, warnings } = await collect(conn);
    expect([...aclOf(changes, f.plan).principals].sort()).toEqual([principal(3), principal(4), principal(5)]);
    expect(aclOf(changes, f.plan).problems ?? []).toEqual([]);
    expect([...aclOf(changes, f.minutes).principals].sort()).toEqual([principal(6), 'user:alice@acme.test']);
    expect(aclOf(changes, f.memo).principals).toEqual([principal(6)]);

    const groups = await memberships(conn);
    expect(Object.fromEntries(groups)).toEqual({
      [key(3)]: ['alice@acme.test'], // Owners: the Microsoft 365 group's owners (…|<id>_o)
      [key(4)]: ['carol@acme.test'], // Visitors: an Entra security group
      [key(5)]: ['bob@acme.test', 'erin@acme.test'], // Members: the Microsoft 365 group, with its nested group
      [key(6)]: ['dave@acme.test', 'frank@acme.test', 'gus@acme.test'], // Board: users, and "Everyone except external users", which grants nothing
    });
    expect(warnings.join('\n')).toMatch(/SharePoint group "Board": organisation-wide claim .*spo-grid-all-users.* grants nothing/);
    // Read through SharePoint REST, page by page (4 members at 3 per page).
    expect(g.sharepointRequests(/\/_api\/web\/sitegroups\/GetById\(6\)\/users/).length).toBe(2);
    expect(g.graphRequests(/\/groups\/.*\/owners/).length).toBeGreaterThan(0);
  });

  it('a site-group membership change changes the memberships and nothing else', async () => {
    const first = await collect(connect());
    g.addSiteGroupMember(site.id, 'Board', erin.id);
    g.removeSiteGroupMember(site.id, 'Board', dave.id);
    g.removeGroupMember(marketing.id, interns.id);
    const conn = connect();
    const { changes } = await collect(conn, first.cursor);
    expect(changes).toEqual([]);
    const groups = await memberships(conn);
    expect(groups.get(key(6))).toEqual(['erin@acme.test', 'frank@acme.test', 'gus@acme.test']);
    expect(groups.get(key(5))).toEqual(['bob@acme.test']);
  });

  it('tokens rejected by Graph and SharePoint are renewed once each', async () => {
    const conn = connect();
    await collect(conn);
    expect(conn.tokens.tokenRequests).toBe(2);
    g.expireAccessTokens();
    await collect(conn);
    expect((await memberships(conn)).get(key(6))).toEqual(['dave@acme.test', 'frank@acme.test', 'gus@acme.test']);
    expect(g.graphRequests().some((r) => r.status === 401)).toBe(true);
    expect(g.sharepointRequests().some((r) => r.status === 401)).toBe(true);
    expect(g.tokenRequests().slice(2).map((t) => t.token?.resource).sort()).toEqual([g.url, g.sharepointUrl].sort());
    expect(conn.tokens.tokenRequests).toBe(4);
  });

  it('a SharePoint group that no longer exists has no members', async () => {
    const { cursor } = await collect(connect());
    site.siteGroups.delete(6);
    const groups = await memberships(connect(), [key(6)]);
    expect(cursor).not.toBeNull();
    expect(groups.get(key(6))).toEqual([]);
  });

  it('siteGroupMembers still overrides: a declared group is not read from SharePoint', async () => {
    const conn = connect({ siteGroupMembers: { 'Marketing Members': ['grace@acme.test'] } });
    const { changes } = await collect(conn);
    expect([...aclOf(changes, f.plan).principals].sort()).toEqual([principal(3), principal(4), 'user:grace@acme.test']);
    await memberships(conn);
    expect(g.sharepointRequests(/GetById\(5\)/)).toEqual([]);
  });

  it('waits out SharePoint throttling, and hands a long Retry-After to the job layer', async () => {
    g.throttleNext(1, 429, 1, /GetById\(6\)\/users/);
    const conn = connect();
    await collect(conn);
    expect((await memberships(conn)).get(key(6))).toEqual(['dave@acme.test', 'frank@acme.test', 'gus@acme.test']);
    const throttled = g.sharepointRequests().find((r) => r.status === 429)!;
    const retry = g.sharepointRequests().find((r) => r.path === throttled.path && r.startedAt > throttled.endedAt)!;
    expect(retry.status).toBe(200);
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);

    g.throttleNext(1, 503, 600, /\/_api\//);
    const err = await collect(connect()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: true, status: 503, retryAfterSeconds: 600 });
  });
});

describe('SharePoint site groups with a client secret', () => {
  it('grant nothing, and every run says how many documents a certificate would open', async () => {
    const conn = connect({}, { secret: true });
    const first = await collect(conn);
    expect([...aclOf(first.changes, f.plan).principals].sort()).toEqual([principal(3), principal(4), principal(5)]);
    expect(aclOf(first.changes, f.plan).problems?.join('\n')).toMatch(/SharePoint group "Marketing Members" grants nothing.*certificate/);
    const summary = /SharePoint groups: (\d+) documents? of this source .* \((\d+) of them only that way/;
    expect(first.warnings.join('\n')).toMatch(summary);
    expect(summary.exec(first.warnings.join('\n'))!.slice(1)).toEqual(['3', '2']);
    // Members cannot be read: every SharePoint group is empty, and SharePoint REST is never called.
    const groups = await memberships(conn);
    for (const id of [3, 4, 5, 6]) expect(groups.get(key(id))).toEqual([]);
    expect(g.sharepointRequests()).toEqual([]);

    // An incremental run that sees one change still counts the whole source.
    g.setPermissions(f.memo.id, [{ user: bob.id }]);
    const second = await collect(connect({}, { secret: true }), first.cursor);
    expect(second.changes).toHaveLength(1);
    expect(summary.exec(second.warnings.join('\n'))!.slice(1)).toEqual(['2', '1']);
  });

  it('switching between a secret and a certificate re-reads every permission', async () => {
    const { cursor } = await collect(connect({}, { secret: true }));
    await expect(collect(connect(), cursor)).rejects.toBeInstanceOf(CursorExpiredError);
    const withCert = await collect(connect());
    await expect(collect(connect({}, { secret: true }), withCert.cursor)).rejects.toBeInstanceOf(CursorExpiredError);
  });
});

describe('SharePoint REST collections', () => {
  it('reads verbose, nometadata and minimalmetadata pages with their next links', () => {
    const url = new URL(`${site.webUrl}/_api/web/sitegroups/GetById(6)/users`);
    for (const format of ['verbose', 'nometadata', 'minimalmetadata'] as const) {
      const first = readCollection<{ LoginName: string }>(siteRest(g, site, 'web/sitegroups/GetById(6)/users', url, format, 3).body as Record<string, unknown>);
      expect(first.items).toHaveLength(3);
      expect(first.nextLink).toMatch(/%24skiptoken=Paged%3DTRUE%26p_ID%3D\d+/);
      const rest = readCollection<{ LoginName: string }>(siteRest(g, site, 'web/sitegroups/GetById(6)/users', new URL(first.nextLink!), format, 3).body as Record<string, unknown>);
      expect(rest.nextLink).toBeUndefined();
      expect([...first.items, ...rest.items].map((u) => u.LoginName).sort()).toEqual([
        'c:0-.f|rolemanager|spo-grid-all-users/11111111-2222-3333-4444-555555555555',
        'i:0#.f|membership|dave@acme.test',
        'i:0#.f|membership|frank@acme.test',
        'i:0#.f|membership|gus@acme.test',
      ]);
    }
  });
});

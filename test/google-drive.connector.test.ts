import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Change, ChangePage } from '../src/connectors/interface.ts';
import { createGoogleDriveConnector, type GoogleDriveConnector } from '../src/connectors/google-drive/index.ts';
import { mapPermissions } from '../src/connectors/google-drive/permissions.ts';
import { CursorExpiredError, UpstreamError } from '../src/errors.ts';
import { DIRECTORY_SCOPE, DRIVE_SCOPE, myDriveRoot, startFakeGoogle, type FakeGoogle, type FakeSharedDrive } from './fakes/google/index.ts';
import { createHarness, syncNow } from './support/harness.ts';

const D = 'acme.test';
let g: FakeGoogle;
let key: Record<string, string>;
let drive: FakeSharedDrive;

beforeEach(async () => {
  g = await startFakeGoogle({ domain: D, pageSize: 3 });
  g.addUser(`admin@${D}`, { admin: true });
  g.addUser(`alice@${D}`);
  g.addUser(`bob@${D}`);
  key = g.createServiceAccount('sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
  drive = g.addSharedDrive('Docs', [{ type: 'user', emailAddress: `alice@${D}`, role: 'organizer' }]);
});
afterEach(async () => g.close());

function connector(extra: Record<string, unknown> = {}, tuning = {}): GoogleDriveConnector {
  const { config, credentials } = g.sourceConfig(key, { driveIds: [drive.id], ...extra });
  return createGoogleDriveConnector({ sourceId: 'src', config, credentials, tuning: { baseDelayMs: 10, ...tuning } });
}

async function collect(c: GoogleDriveConnector, cursor: string | null = null): Promise<{ pages: ChangePage[]; changes: Change[]; cursor: string | null }> {
  const pages: ChangePage[] = [];
  let last = cursor;
  for await (const p of c.changes({ cursor, full: cursor === null })) {
    pages.push(p);
    if (p.cursor) last = p.cursor;
  }
  return { pages, changes: pages.flatMap((p) => p.changes), cursor: last };
}
const upserts = (cs: Change[]) => cs.filter((c): c is Extract<Change, { kind: 'upsert' }> => c.kind === 'upsert');

describe('Drive permissions → principals (contract §4)', () => {
  it('grants users, groups, discoverable domains and anyone; nothing for links, deleted, pending, views or expired', () => {
    const acl = mapPermissions('s', [
      { id: '1', type: 'user', role: 'commenter', emailAddress: 'Alice@Acme.test' },
      { id: '2', type: 'group', role: 'reader', emailAddress: 'Team@acme.test' },
      { id: '3', type: 'domain', role: 'reader', domain: 'acme.test', allowFileDiscovery: true },
      { id: '4', type: 'domain', role: 'writer', domain: 'other.test', allowFileDiscovery: false },
      { id: 'anyoneWithLink', type: 'anyone', role: 'reader', allowFileDiscovery: false },
      { id: '5', type: 'user', role: 'reader', emailAddress: 'gone@acme.test', deleted: true },
      { id: '6', type: 'user', role: 'writer', emailAddress: 'pending@acme.test', pendingOwner: true },
      { id: '7', type: 'user', role: 'reader', emailAddress: 'meta@acme.test', view: 'metadata' },
      { id: '8', type: 'user', role: 'reader', emailAddress: 'old@acme.test', expirationTime: '2000-01-01T00:00:00Z' },
      { id: '9', type: 'user', emailAddress: 'member@acme.test', permissionDetails: [{ permissionType: 'member', role: 'organizer', inherited: true }] },
    ]);
    expect(acl.principals).toEqual(['domain:acme.test', 'sgroup:s/team@acme.test', 'user:alice@acme.test', 'user:member@acme.test']);
    expect(acl.groupEmails).toEqual(['team@acme.test']);
    expect(acl.problems).toEqual([]);
    expect(mapPermissions('s', [{ id: 'anyone', type: 'anyone', role: 'reader', allowFileDiscovery: true }]).principals).toEqual(['everyone']);
  });

  it('reports what it cannot resolve, granting nothing for it', () => {
    const acl = mapPermissions('s', [{ id: '1', type: 'user', role: 'reader' }, { id: '2', type: 'robot', role: 'reader' }, { id: '3', type: 'user', emailAddress: 'x@acme.test' }]);
    expect(acl.principals).toEqual([]);
    expect(acl.problems).toHaveLength(3);
  });
});

describe('Google Drive connector against the fake Google', () => {
  it('signs the JWT-bearer grant for the key and posts it to the key\'s token_uri, impersonating a drive member', async () => {
    g.addFile(drive.id, 'a.txt', 'alpha');
    const c = connector();
    const { changes } = await collect(c);
    expect(upserts(changes).map((u) => u.doc.path)).toEqual(['/Docs/a.txt']);
    const tokens = g.requests.filter((r) => r.kind === 'token');
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.every((t) => t.status === 200)).toBe(true);
    // The admin is no member of the drive: its files are listed as the organizer.
    expect(g.apiRequests().filter((r) => r.path.startsWith('/drive/v3/files?')).map((r) => r.subject)).toEqual([`alice@${D}`, `alice@${D}`]);
  });

  it('honours a rootUrl with a path prefix', async () => {
    const c = createGoogleDriveConnector({ sourceId: 's', config: { ...g.sourceConfig(key).config, driveIds: [drive.id], rootUrl: `${g.url}/google/` }, credentials: { serviceAccountKey: key } });
    await expect(collect(c)).rejects.toThrow(/not found/);
    expect(g.apiRequests()[0]!.path).toMatch(/^\/google\/drive\/v3\//);
  });

  it('exports Docs, Sheets and Slides, downloads text, and skips other formats without downloading them', async () => {
    g.addGoogleFile(drive.id, 'Doc', 'document', 'doc text');
    g.addGoogleFile(drive.id, 'Sheet', 'spreadsheet', 'a,b\n1,2');
    g.addGoogleFile(drive.id, 'Slides', 'presentation', 'slide text');
    g.addGoogleOther(drive.id, 'Drawing', 'application/vnd.google-apps.drawing');
    g.addFile(drive.id, 'photo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    g.addFile(drive.id, 'readme.md', '# Readme');
    const { changes } = await collect(connector());
    const got: Record<string, string> = {};
    g.resetLog();
    for (const u of upserts(changes)) {
      const f = await u.fetch();
      got[u.doc.title] = `${f.mimeType}|${f.bytes[0] === 0 ? '(not downloaded)' : f.bytes.toString()}`;
    }
    expect(got).toEqual({
      Doc: 'text/plain|doc text', Sheet: 'text/csv|a,b\n1,2', Slides: 'text/plain|slide text',
      Drawing: 'application/vnd.google-apps.drawing|(not downloaded)', 'photo.png': 'image/png|(not downloaded)', 'readme.md': 'text/markdown|# Readme',
    });
    expect(g.apiRequests().filter((r) => /export|alt=media/.test(r.path))).toHaveLength(4);
  });

  it('follows a shortcut once: an out-of-scope target is indexed, a shortcut to an ancestor does not loop', async () => {
    const folder = g.addFolder(drive.id, 'F');
    g.addShortcut(folder.id, 'loop', folder.id);
    const outside = g.addFolder(myDriveRoot(`bob@${D}`), 'Bob', { permissions: [{ type: 'user', emailAddress: `alice@${D}` }] });
    const target = g.addFile(outside.id, 'bob.txt', 'bob text');
    g.addShortcut(folder.id, 'to bob', outside.id);
    const { changes } = await collect(connector());
    expect(upserts(changes).map((u) => [u.doc.path, u.doc.externalId])).toEqual([['/Docs/F/to bob/bob.txt', target.id]]);
  });

  it('makes a file whose permissions cannot be read visible to no one, saying why', async () => {
    const f = g.addFile(drive.id, 'secret.txt', 'secret');
    g.lockPermissions(f.id);
    const { changes } = await collect(connector());
    const u = upserts(changes)[0]!;
    expect(u.acl.principals).toEqual([]);
    expect(u.acl.problems?.[0]).toMatch(/permissions could not be read .*insufficientFilePermissions.*visible to no one/);
  });

  it('expands groups transitively through the Directory, cycles included', async () => {
    g.addGroup(`a@${D}`, [`alice@${D}`]);
    g.addGroup(`b@${D}`, [`bob@${D}`, `a@${D}`]);
    g.addMember(`a@${D}`, `b@${D}`);
    g.setDriveMembers(drive.id, [{ type: 'user', emailAddress: `alice@${D}` }, { type: 'group', emailAddress: `a@${D}`, role: 'reader' }]);
    g.addFile(drive.id, 'x.txt', 'x');
    const c = connector();
    await collect(c);
    const groups = [];
    for await (const m of c.groups()) groups.push(m);
    expect(groups).toEqual([{ groupId: `a@${D}`, memberEmails: [`alice@${D}`, `bob@${D}`] }]);
  });

  it('commits the cursor after every change page and throws CursorExpiredError for an expired page token', async () => {
    const c = connector();
    const first = await collect(c);
    for (let i = 0; i < 7; i++) g.addFile(drive.id, `n${i}.txt`, `n${i}`);
    const inc = await collect(c, first.cursor);
    const feedPages = inc.pages.filter((p) => p.changes.length > 0);
    expect(feedPages.length).toBeGreaterThanOrEqual(3); // pageSize 3
    expect(feedPages.every((p) => p.cursor !== null)).toBe(true);
    g.expirePageTokens();
    await expect(collect(c, inc.cursor)).rejects.toBeInstanceOf(CursorExpiredError);
  });

  it('retries 5xx and 403 rate limits with backoff, keeps concurrency bounded, and hands long waits to the job layer', async () => {
    for (let i = 0; i < 12; i++) g.addFile(drive.id, `f${i}.txt`, `f${i}`);
    g.latencyMs = 20;
    g.throttleNext(2, { status: 503, retryAfter: null, match: /\/permissions/ });
    g.throttleNext(1, { status: 403, reason: 'rateLimitExceeded', retryAfter: null, match: /\/files\?/ });
    const c = connector({ maxConcurrency: 2 });
    const { changes } = await collect(c);
    expect(upserts(changes)).toHaveLength(12);
    expect(g.maxInFlight).toBeLessThanOrEqual(2);
    expect(c.api.limiter.maxActive).toBeLessThanOrEqual(2);

    g.throttleNext(1, { status: 429, retryAfter: 600, match: /\/drives/ });
    const err = await collect(connector()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 600 });
  });

  it('a run that fails mid-way leaves the index and the cursor as they were', async () => {
    const h = await createHarness();
    try {
      const { config, credentials } = g.sourceConfig(key, { driveIds: [drive.id] });
      const { encryptJson } = await import('../src/metadata/secrets.ts');
      const source = await h.metadata.sources.create({ name: 'd', type: 'google_drive', config, credentialsEncrypted: encryptJson(h.secretKey, credentials), schedule: null, freshness: null });
      g.addFile(drive.id, 'a.txt', 'alpha text');
      expect((await syncNow(h, source.id)).status).toBe('succeeded');
      const cursor = await h.metadata.sources.cursor(source.id);
      const before = await h.metadata.documents.list({ sourceId: source.id, limit: 10 });

      g.addFile(drive.id, 'b.txt', 'beta text');
      g.throttleNext(50, { status: 503, retryAfter: 600, match: /\/permissions/ });
      // The attempt fails; the job policy keeps the run queued for a retry with backoff.
      const run = await syncNow(h, source.id);
      expect(run.status).toBe('queued');
      expect(run.error).toMatch(/503/);
      expect(await h.metadata.sources.cursor(source.id)).toBe(cursor);
      expect(await h.metadata.documents.list({ sourceId: source.id, limit: 10 })).toEqual(before);
    } finally {
      await h.cleanup();
    }
  });
});

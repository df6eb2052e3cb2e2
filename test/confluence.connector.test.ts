import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createConfluenceConnector, type ConfluenceConnector } from '../src/connectors/confluence/index.ts';
import { ConfluenceError } from '../src/connectors/confluence/client.ts';
import { siteHost } from '../src/connectors/confluence/config.ts';
import { storageToHtml } from '../src/connectors/confluence/storage.ts';
import type { Change, ChangePage } from '../src/connectors/interface.ts';
import { UpstreamError } from '../src/errors.ts';
import { extractText } from '../src/extract/index.ts';
import { startFakeConfluence, type FakeConfluence } from './fakes/confluence/index.ts';

/**
 * The connector against the fake Cloud site, through confluence.js: paging, the request shapes it
 * sends, fail-closed cases, throttling and faults. The end-to-end oracle test covers visibility
 * across many syncs; this file covers the edges one at a time.
 */

let site: FakeConfluence;
let n = 0;

beforeEach(async () => {
  site = await startFakeConfluence({ pageSize: 2 });
});
afterEach(async () => {
  await site.close();
});

function connector(spaceKeys: string[], extra: Record<string, unknown> = {}, tuning = {}): ConfluenceConnector {
  const { config, credentials } = site.sourceConfig(spaceKeys, extra);
  return createConfluenceConnector({ sourceId: `src${++n}`, config, credentials, tuning: { backoffBaseMs: 20, ...tuning } });
}

async function drain(c: ConfluenceConnector, cursor: string | null = null): Promise<{ pages: ChangePage[]; changes: Change[]; cursor: string | null }> {
  const pages: ChangePage[] = [];
  for await (const p of c.changes({ cursor, full: cursor === null })) pages.push(p);
  return { pages, changes: pages.flatMap((p) => p.changes), cursor: pages.at(-1)?.cursor ?? null };
}

const upserts = (changes: Change[]) => changes.filter((c): c is Extract<Change, { kind: 'upsert' }> => c.kind === 'upsert');
const aclOf = (changes: Change[], externalId: string) => {
  const c = changes.find((x) => (x.kind === 'upsert' ? x.doc.externalId : x.externalId) === externalId);
  return c && c.kind !== 'delete' ? c.acl : undefined;
};

describe('Confluence connector', () => {
  it('accepts baseUrl with or without /wiki and keeps a proxy prefix', () => {
    expect(siteHost('https://acme.atlassian.net/wiki')).toBe('https://acme.atlassian.net');
    expect(siteHost('https://acme.atlassian.net/wiki/')).toBe('https://acme.atlassian.net');
    expect(siteHost('https://acme.atlassian.net')).toBe('https://acme.atlassian.net');
    expect(siteHost('https://proxy.example/confluence/wiki')).toBe('https://proxy.example/confluence');
  });

  it('pages through every listing (v2 cursors, CQL cursors) and asks for current content only', async () => {
    const alice = site.addUser('alice@acme.test');
    site.addSpace('DOC', { view: [{ user: alice.accountId }] });
    const root = site.addPage('DOC', 'Root', '<p>root</p>');
    for (let i = 0; i < 7; i++) site.addPage('DOC', `Child ${i}`, `<p>child ${i}</p>`, { parent: root });
    const archived = site.addPage('DOC', 'Old', '<p>old</p>', { parent: root });
    site.archive(archived);
    const { changes } = await drain(connector(['DOC']));
    const ids = upserts(changes).map((c) => c.doc.externalId).sort();
    expect(ids).toHaveLength(8);
    expect(ids).not.toContain(`page:${archived.id}`);
    expect(site.callCount(/\/spaces\/\d+\/pages\?.*cursor=/)).toBeGreaterThan(0);
    expect(site.callCount(/\/rest\/api\/content\/search\?.*cursor=/)).toBeGreaterThan(0);
    expect(site.requests.filter((r) => r.path.includes('/pages?') || /\/spaces\/\d+\/pages/.test(r.path)).every((r) => r.path.includes('status=current'))).toBe(true);
  });

  it('turns storage format into heading-structured text titled by the page', async () => {
    const html = storageToHtml('Deploy & roll back', [
      '<h1>Deploy</h1><p>Run the <strong>script</strong>.</p>',
      '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>',
      '<ac:plain-text-body><![CDATA[npm run deploy -- --env <prod>]]></ac:plain-text-body></ac:structured-macro>',
      '<h2>Roll back</h2><p>See <ac:link><ri:page ri:content-title="Rollback guide" /></ac:link>.</p>',
    ].join(''));
    const out = await extractText({ bytes: Buffer.from(html), mimeType: 'text/html' });
    expect(out.title).toBe('Deploy & roll back');
    expect(out.text).toContain('# Deploy');
    expect(out.text).toContain('## Roll back');
    expect(out.text).toContain('npm run deploy -- --env <prod>');
    expect(out.text).toContain('Rollback guide');
    expect(out.text).not.toContain('bash');
  });

  it('follows restrictions of non-page ancestors (folders) and pages through long restriction lists', async () => {
    site.restrictionPageSize = 2;
    const users = ['a', 'b', 'c', 'd', 'e'].map((x) => site.addUser(`${x}@acme.test`));
    site.addSpace('DOC', { view: users.map((u) => ({ user: u.accountId })) });
    const folder = site.addFolder('DOC', 'Team folder');
    const page = site.addPage('DOC', 'In folder', '<p>x</p>', { parent: folder });
    site.setReadRestriction(folder, { users: users.slice(0, 4) });
    site.setReadRestriction(page, { users: users.slice(1) });
    const { changes } = await drain(connector(['DOC']));
    const up = upserts(changes).find((c) => c.doc.externalId === `page:${page.id}`)!;
    expect(up.doc.path).toBe('/DOC/Team folder/In folder');
    expect(up.acl.principals).toEqual(['user:b@acme.test', 'user:c@acme.test', 'user:d@acme.test']);
    expect(site.callCount(/\/api\/v2\/pages\/\d+\/ancestors/)).toBe(1);
    expect(site.callCount(/restriction\/byOperation\/read\?.*start=2/)).toBeGreaterThan(0);
  });

  it('fails closed: unreadable restrictions hide the page and its subtree, hidden emails grant nothing', async () => {
    const alice = site.addUser('alice@acme.test');
    const ghost = site.addUser('ghost@acme.test', { hidden: true });
    site.addSpace('DOC', { view: [{ user: alice.accountId }, { user: ghost.accountId }] });
    const parent = site.addPage('DOC', 'Parent', '<p>p</p>');
    const child = site.addPage('DOC', 'Child', '<p>c</p>', { parent });
    const open = site.addPage('DOC', 'Open', '<p>o</p>');
    parent.restrictionsHidden = true;
    const { changes } = await drain(connector(['DOC']));
    expect(aclOf(changes, `page:${parent.id}`)).toMatchObject({ principals: [], problems: expect.arrayContaining([expect.stringMatching(/could not be read.*visible to no one/)]) });
    expect(aclOf(changes, `page:${child.id}`)?.principals).toEqual([]);
    const openAcl = aclOf(changes, `page:${open.id}`)!;
    expect(openAcl.principals).toEqual(['user:alice@acme.test', 'user:indexer@acme.test']);
    expect(openAcl.problems?.join('\n')).toMatch(/account .* whose email is not visible, grants nothing/);
  });

  it('an unreadable space permission list grants nothing rather than everything', async () => {
    const alice = site.addUser('alice@acme.test');
    const space = site.addSpace('DOC', { view: [{ user: alice.accountId }, { role: 'some-role' }] });
    const page = site.addPage('DOC', 'Page', '<p>p</p>');
    let { changes } = await drain(connector(['DOC']));
    expect(aclOf(changes, `page:${page.id}`)).toMatchObject({ principals: ['user:alice@acme.test', 'user:indexer@acme.test'], problems: [expect.stringMatching(/role some-role cannot be mapped/)] });
    site.throttleNext(1, 429, null, new RegExp(`/spaces/${space.id}/permissions`)); // retried, not a failure
    ({ changes } = await drain(connector(['DOC'])));
    expect(aclOf(changes, `page:${page.id}`)?.principals).toEqual(['user:alice@acme.test', 'user:indexer@acme.test']);
    space.permissionsHidden = true;
    ({ changes } = await drain(connector(['DOC'])));
    expect(aclOf(changes, `page:${page.id}`)).toMatchObject({ principals: [], problems: [expect.stringMatching(/view permissions could not be read.*nobody is granted/)] });
  });

  it('an incremental run reads no body it does not need and reports only what changed', async () => {
    const alice = site.addUser('alice@acme.test');
    site.addSpace('DOC', { view: [{ user: alice.accountId }] });
    const pages = Array.from({ length: 5 }, (_, i) => site.addPage('DOC', `P${i}`, `<p>${i}</p>`));
    const c = connector(['DOC']);
    const first = await drain(c);
    site.resetLog();
    const again = await drain(c, first.cursor);
    expect(again.changes).toEqual([]);
    expect(site.callCount(/body-format=storage/)).toBe(0);

    site.editBody(pages[1]!, '<p>edited</p>');
    site.setReadRestriction(pages[2]!, { users: [alice] });
    site.trash(pages[3]!);
    site.resetLog();
    const delta = await drain(c, again.cursor);
    expect(delta.changes.map((x) => `${x.kind}:${x.kind === 'upsert' ? x.doc.externalId : x.externalId}`).sort()).toEqual([
      `acl:page:${pages[2]!.id}`, `delete:page:${pages[3]!.id}`, `upsert:page:${pages[1]!.id}`,
    ].sort());
    const body = await upserts(delta.changes)[0]!.fetch();
    expect(body.bytes.toString()).toContain('edited');
    expect(site.callCount(/body-format=storage/)).toBe(1);
  });

  it('rejects a cursor it cannot read so the engine runs a full sync', async () => {
    site.addSpace('DOC');
    const c = connector(['DOC']);
    await expect(drain(c, 'not json')).rejects.toThrow(/cursor is not readable/);
  });

  it('honours Retry-After on 429 and retries 5xx with backoff, within bounded concurrency', async () => {
    site.latencyMs = 15;
    const alice = site.addUser('alice@acme.test');
    site.addSpace('DOC', { view: [{ user: alice.accountId }] });
    const folder = site.addFolder('DOC', 'F');
    for (let i = 0; i < 12; i++) {
      const p = site.addPage('DOC', `P${i}`, '<p>x</p>', { parent: folder });
      site.setReadRestriction(p, { users: [alice] });
    }
    site.restrictionPageSize = 1; // every list looks capped: each restriction is read on its own, in parallel
    site.throttleNext(1, 429, 1, /restriction\/byOperation/);
    site.throttleNext(2, 502, null, /\/api\/v2\/spaces\?/);
    const c = connector(['DOC'], { maxConcurrency: 3 });
    const { changes } = await drain(c);
    expect(upserts(changes)).toHaveLength(12);
    expect(site.maxInFlight).toBeLessThanOrEqual(3);
    const throttled = site.requests.find((r) => r.status === 429)!;
    const retry = site.requests.find((r) => r !== throttled && r.path === throttled.path && r.startedAt >= throttled.endedAt)!;
    expect(retry.startedAt - throttled.endedAt).toBeGreaterThanOrEqual(950);
    expect(site.requests.filter((r) => r.status === 502)).toHaveLength(2);
    expect(c.api.stats.retries).toBe(3);
  });

  it('hands a long Retry-After to the job layer as an UpstreamError, and gives up on persistent 5xx', async () => {
    site.addSpace('DOC');
    site.throttleNext(1, 429, 3600);
    const err = await drain(connector(['DOC'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterSeconds: 3600 });

    site.throttleNext(10, 503, null);
    const err2 = await drain(connector(['DOC'], {}, { maxAttempts: 3 })).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ConfluenceError);
    expect(err2).toMatchObject({ status: 503, retryable: true });
  });

  it('times out a hanging request and retries it', async () => {
    site.addSpace('DOC');
    site.delayNext(1, 1500, /\/api\/v2\/spaces\?/);
    const c = connector(['DOC'], { requestTimeoutMs: 300 });
    await expect(drain(c)).resolves.toBeDefined();
    expect(c.api.stats.retries).toBe(1);
  });

  it('test(): names a wrong token, an unknown space key, and an unreachable site', async () => {
    site.addSpace('DOC');
    await expect(connector(['DOC']).test()).resolves.toBeUndefined();
    const { config, credentials } = site.sourceConfig(['DOC']);
    const wrong = createConfluenceConnector({ sourceId: 'x', config, credentials: { ...credentials, apiToken: 'nope' } });
    await expect(wrong.test()).rejects.toThrow(/rejected the credentials of indexer@acme\.test \(HTTP 401\)/);
    await expect(connector(['DOC', 'MISSING', 'GONE']).test()).rejects.toThrow(/unknown space keys MISSING, GONE/);
    const down = createConfluenceConnector({ sourceId: 'y', config: { baseUrl: 'http://127.0.0.1:9/wiki', spaceKeys: ['DOC'] }, credentials, tuning: { maxAttempts: 1 } });
    await expect(down.test()).rejects.toThrow(/cannot reach Confluence at http:\/\/127\.0\.0\.1:9\/wiki/);
  });

  it('syncs group members page by page and reports members whose email is hidden', async () => {
    const members = Array.from({ length: 5 }, (_, i) => site.addUser(`m${i}@acme.test`));
    const hidden = site.addUser('h@acme.test', { hidden: true });
    const g = site.addGroup('big', [...members, hidden]);
    site.addSpace('DOC', { view: [{ group: g.id }] });
    site.addPage('DOC', 'P', '<p>x</p>');
    const c = connector(['DOC']);
    const { pages } = await drain(c);
    expect(pages[0]!.warnings?.join('\n')).toMatch(/1 member\(s\) have no visible email/);
    const groups = [];
    for await (const x of c.groups({ knownGroupIds: ['gone-group'] })) groups.push(x);
    expect(groups).toEqual([
      { groupId: g.id, memberEmails: members.map((m) => m.email).sort() },
      { groupId: 'gone-group', memberEmails: [] },
    ]);
  });

  it('does not download attachments the extractors would refuse', async () => {
    site.addSpace('DOC');
    const page = site.addPage('DOC', 'P', '<p>x</p>');
    site.addAttachment(page, 'movie.mp4', Buffer.alloc(1000, 1), 'video/mp4');
    site.addAttachment(page, 'notes.md', '# Notes\n\nhello', 'text/markdown');
    const { changes } = await drain(connector(['DOC']));
    for (const u of upserts(changes)) await u.fetch();
    expect(site.callCount(/download/)).toBe(2); // notes.md: the 302 and the file; movie.mp4: nothing
    expect(site.requests.some((r) => r.path.includes('movie.mp4'))).toBe(false);
  });
});

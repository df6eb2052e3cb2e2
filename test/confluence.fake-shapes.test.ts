import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeConfluence } from './fakes/confluence/index.ts';

/**
 * The fake's answers against the shapes confluence.js derives from Atlassian's OpenAPI specs, in
 * the library's strict audit mode (AUDIT_SCHEMAS=true: every object strict, every enum closed).
 * Any field the fake sends that Atlassian does not document, or any value outside a documented
 * set, is recorded as drift, and drift here means the fake is not speaking Confluence.
 */

let site: FakeConfluence;
type Drift = { kind: string; endpoint: string; path: string; keys?: string[]; value?: string };
let collected: () => Drift[];

beforeAll(async () => {
  // The schemas are built when confluence.js is first imported, so the switch must come first.
  process.env.AUDIT_SCHEMAS = 'true';
  const store = Symbol.for('apis-code-gen.schemaAudit');
  collected = () => ((globalThis as Record<symbol, unknown>)[store] as Drift[] | undefined) ?? [];
  const { startFakeConfluence } = await import('./fakes/confluence/index.ts');
  site = await startFakeConfluence({ pageSize: 2, restrictionPageSize: 2 });
});

afterAll(async () => {
  delete process.env.AUDIT_SCHEMAS;
  await site?.close();
});

describe('fake Confluence speaks the documented shapes', () => {
  it('every endpoint the connector uses answers without schema drift', async () => {
    const { createConfluenceConnector } = await import('../src/connectors/confluence/index.ts');
    // The audit really is on (otherwise this test would pass vacuously): schemas are strict.
    const { SpaceSummarySchema } = await import('confluence.js/v2') as unknown as { SpaceSummarySchema: { safeParse: (v: unknown) => { success: boolean } } };
    expect(SpaceSummarySchema.safeParse({ id: '1', undocumentedField: true }).success).toBe(false);
    const alice = site.addUser('alice@acme.test');
    const hidden = site.addUser('hidden@acme.test', { hidden: true });
    const g = site.addGroup('eng', [alice, hidden]);
    site.addSpace('DOC', { view: [{ group: g.id }, { user: alice.accountId }, { accessClass: 'all-licensed-users' }] });
    const folder = site.addFolder('DOC', 'Folder');
    const page = site.addPage('DOC', 'Page', '<h1>T</h1><p>x</p>', { parent: folder, owner: hidden });
    const child = site.addPage('DOC', 'Child', '<p>y</p>', { parent: page });
    site.setReadRestriction(page, { users: [alice, hidden], groups: [g] });
    site.setReadRestriction(folder, { users: [alice] });
    site.addBlogPost('DOC', 'News', '<p>z</p>');
    site.addAttachment(child, 'a.txt', 'hello', 'text/plain');
    const { config, credentials } = site.sourceConfig(['DOC']);
    const c = createConfluenceConnector({ sourceId: 's', config, credentials });
    await c.test();
    for await (const p of c.changes({ cursor: null, full: true })) for (const ch of p.changes) if (ch.kind === 'upsert') await ch.fetch();
    for await (const x of c.groups()) void x;
    expect(site.requests.every((r) => r.status < 400)).toBe(true);
    expect(site.callCount(/ancestors|folders|byOperation|user\/bulk|membersByGroupId|download|content\/search|permissions/)).toBeGreaterThan(8);
    expect(collected()).toEqual([]);
  });
});

/**
 * Fake Confluence Cloud (REST API v2 + v1) for connector tests, exercised through confluence.js.
 *
 *   const site = await startFakeConfluence({ pageSize: 5 });
 *   const alice = site.addUser('alice@acme.test');
 *   const eng = site.addGroup('engineering', [alice]);
 *   site.addSpace('ENG', { view: [{ group: eng.id }] });
 *   const root = site.addPage('ENG', 'Runbooks', '<h1>Runbooks</h1><p>…</p>');
 *   site.setReadRestriction(root, { groups: [eng] });
 *   const { config, credentials } = site.sourceConfig(['ENG']);
 *   …mutate (editBody, rename, move, trash, archive, setReadRestriction, addGroupMember, throttleNext…), sync again…
 *   await site.close();
 */
export { FakeConfluence, startFakeConfluence, type FakeConfluenceOptions, type RequestLogEntry } from './server.ts';
export {
  FakeConfluenceSite, type FakeAttachment, type FakeContent, type FakeGroup, type FakeSpace, type FakeUser, type SpaceGrantee,
} from './model.ts';

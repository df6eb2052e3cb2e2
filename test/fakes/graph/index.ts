/**
 * Fake Microsoft Graph + Entra token endpoint for SharePoint/OneDrive tests.
 *
 *   const graph = await startFakeGraph({ pageSize: 3 });
 *   const alice = graph.addUser('alice@acme.test');
 *   const site = graph.addSite('Finance');
 *   const drive = graph.addDrive(site.id, 'Documents', { permissions: [{ user: alice.id }] });
 *   graph.addFile(drive.id, '/Reports/q1.txt', 'Q1 revenue…');
 *   // source registration: type "sharepoint", config/credentials from
 *   const { config, credentials } = graph.sourceConfig({ siteIds: [site.id] });
 *   …mutate (updateContent, rename, move, delete, setPermissions, addLink, addGroupMember…), sync again…
 *   await graph.close();
 */
export { FakeGraph, startFakeGraph, type FakeGraphOptions, type RequestLogEntry } from './server.ts';
export { FakeTenant, type FakeDrive, type FakeGrant, type FakeGroup, type FakeItem, type FakeSite, type FakeUser } from './model.ts';

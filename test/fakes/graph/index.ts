/**
 * Fake Microsoft tenant (Graph, Entra token endpoint, SharePoint REST; HTTPS) for SharePoint/OneDrive tests.
 *
 *   const graph = await startFakeGraph({ pageSize: 3 });
 *   const alice = graph.addUser('alice@acme.test');
 *   const site = graph.addSite('Finance');
 *   const drive = graph.addDrive(site.id, 'Documents', { permissions: [{ user: alice.id }] });
 *   graph.addFile(drive.id, '/Reports/q1.txt', 'Q1 revenue…');
 *   // source registration: type "sharepoint", config/credentials from
 *   const { config, credentials } = graph.sourceConfig({ siteIds: [site.id] });
 *   // certificate credentials: const cert = await graph.addCertificate(); graph.sourceConfig({…}, { certificate: cert })
 *   // site groups: graph.siteGroupGrant(site.id, 'Members'), graph.addSiteGroupMember(site.id, 'Members', group.id)
 *   …mutate (updateContent, rename, move, delete, setPermissions, addLink, addGroupMember…), sync again…
 *   await graph.close();
 */
export { FakeGraph, startFakeGraph, type ChaosOptions, type FakeGraphOptions, type FaultKind, type RequestLogEntry } from './server.ts';
export {
  FakeTenant, type FakeDrive, type FakeGrant, type FakeGroup, type FakeItem, type FakeSite, type FakeSiteGroup, type FakeSiteGroupMember, type FakeUser,
} from './model.ts';
export { makeAppCertificate, type AppCertificateFixture } from './tls.ts';

/**
 * Fake Google (OAuth JWT-bearer token endpoint, Drive v3, Admin SDK Directory v1) for Google Drive tests.
 *
 *   const google = await startFakeGoogle({ pageSize: 50 });
 *   const admin = google.addUser('admin@acme.test', { admin: true });
 *   const key = google.createServiceAccount('sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
 *   const drive = google.addSharedDrive('Finance', [{ type: 'group', emailAddress: 'finance@acme.test' }]);
 *   google.addFile(drive.id, 'q1.txt', 'Q1 revenue…');
 *   const { config, credentials } = google.sourceConfig(key);   // type "google_drive"
 *   …mutate (updateContent, rename, move, trash, remove, addPermission, addMember…), sync again…
 *   await google.close();
 */
export { DIRECTORY_SCOPE, DRIVE_SCOPE, FakeGoogle, startFakeGoogle, type FakeGoogleOptions, type RequestLogEntry } from './server.ts';
export {
  FakeWorkspace, FOLDER, GDOC, GSHEET, GSLIDES, SHORTCUT, myDriveRoot,
  type FakeFile, type FakeGroup, type FakeMember, type FakePermission, type FakeSharedDrive, type FakeUser, type GrantInput, type Role,
} from './model.ts';

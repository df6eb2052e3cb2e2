export { FakeGraph, startFakeGraph, type FakeGraphOptions, type RequestLogEntry } from './server.ts';
export { FakeTenant, type FakeDrive, type FakeGrant, type FakeGroup, type FakeItem, type FakeSite, type FakeUser } from './model.ts';

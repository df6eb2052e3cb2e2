import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfluenceConnector } from '../src/connectors/confluence/index.ts';
import { createGoogleDriveConnector } from '../src/connectors/google-drive/index.ts';
import type { Connector } from '../src/connectors/interface.ts';
import { loadConfig } from '../src/config.ts';
import { SpanKind, inSpan, startTracing, type Tracing } from '../src/telemetry/tracing.ts';
import { startFakeConfluence, type FakeConfluence } from './fakes/confluence/index.ts';
import { DIRECTORY_SCOPE, DRIVE_SCOPE, startFakeGoogle, type FakeGoogle } from './fakes/google/index.ts';

/**
 * Client spans of the Google and Confluence clients (the SharePoint ones are covered end to end by
 * telemetry.otlp.test.ts): one per upstream attempt, under the span that made the call.
 */
describe('OpenTelemetry: upstream client spans', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let google: FakeGoogle;
  let confluence: FakeConfluence;

  beforeAll(async () => {
    tracing = await startTracing(loadConfig({ CLEARANCE_DATA_DIR: '/tmp/unused' }), { exporter });
    expect(tracing.enabled).toBe(true);
    google = await startFakeGoogle({ domain: 'acme.test', pageSize: 3 });
    google.addUser('admin@acme.test', { admin: true });
    google.addUser('alice@acme.test');
    confluence = await startFakeConfluence({ pageSize: 2 });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await google?.close();
    await confluence?.close();
  });

  /** Drains a connector's changes inside a parent span; every client span must be that span's child. */
  async function clientSpansOf(c: Connector): Promise<ReadableSpan[]> {
    exporter.reset();
    const parentId = await inSpan('test.sync', {}, async (span) => {
      for await (const page of c.changes({ cursor: null, full: true })) void page;
      return span.spanContext().spanId;
    });
    await tracing.flush();
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    for (const s of spans) {
      expect(s.parentSpanContext?.spanId).toBe(parentId);
      expect(s.attributes['server.address']).toBe('127.0.0.1');
      expect(String(s.attributes['url.full'])).not.toContain('?');
    }
    return spans;
  }

  it('Google: method, URL and status from each answer', async () => {
    const key = google.createServiceAccount('sync', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
    const drive = google.addSharedDrive('Docs', [{ type: 'user', emailAddress: 'alice@acme.test', role: 'organizer' }]);
    google.addFile(drive.id, 'notes.txt', 'hello');
    const { config, credentials } = google.sourceConfig(key, { driveIds: [drive.id] });
    const spans = await clientSpansOf(createGoogleDriveConnector({ sourceId: 'g', config, credentials }));
    const drives = spans.filter((s) => String(s.attributes['url.full']).includes('/drive/v3/'));
    expect(drives.length).toBeGreaterThan(0);
    for (const s of drives) {
      expect(s.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.response.status_code': 200 });
      expect(s.name).toBe('GET');
    }
  });

  it('Confluence: method and URL of each call through the transport', async () => {
    const alice = confluence.addUser('alice@acme.test');
    confluence.addSpace('DOC', { view: [{ user: alice.accountId }] });
    confluence.addPage('DOC', 'Root', '<p>root</p>');
    const { config, credentials } = confluence.sourceConfig(['DOC']);
    const spans = await clientSpansOf(createConfluenceConnector({ sourceId: 'c', config, credentials }));
    expect(spans.length).toBeGreaterThan(1);
    for (const s of spans) expect(s.attributes['http.request.method']).toBe('GET');
    expect(spans.some((s) => String(s.attributes['url.full']).includes('/wiki/'))).toBe(true);
  });
});

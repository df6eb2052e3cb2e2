import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator, mintDevToken } from '../src/identity/index.ts';
import { startTracing, type Tracing } from '../src/telemetry/tracing.ts';
import { startFakeGraph, type FakeGraph } from './fakes/graph/index.ts';
import { createHarness, syncNow, type Harness } from './support/harness.ts';
import { requester } from './support/http.ts';

const ADMIN = 'test-admin-token-0123456789';

/** What the OTLP/HTTP JSON encoding carries per span (the fields these tests read). */
interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number; arrayValue?: { values?: OtlpValue[] } }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: { key: string; value: OtlpValue }[]; status?: { code?: number } }
interface Span { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attrs: Record<string, unknown>; service: unknown }

const plain = (v: OtlpValue): unknown =>
  v.arrayValue ? (v.arrayValue.values ?? []).map(plain) : v.intValue !== undefined ? Number(v.intValue) : v.stringValue ?? v.boolValue ?? v.doubleValue;

/** A local OTLP/HTTP receiver: collects every exported span, with its resource's service.name. */
async function otlpReceiver() {
  const spans: Span[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      contentTypes.push(String(req.headers['content-type']));
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of body.resourceSpans) {
          const service = plain(rs.resource.attributes.find((a) => a.key === 'service.name')!.value);
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              spans.push({ ...s, attrs: Object.fromEntries(s.attributes.map((a) => [a.key, plain(a.value)])), service });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { spans, contentTypes, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('OpenTelemetry: spans exported over OTLP/HTTP', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let h: Harness;
  let tracing: Tracing;
  let app: ReturnType<typeof createApp>;
  const req = requester(() => app);
  let sourceId: string;
  let runId: string;
  let agentId: string;
  let graph: FakeGraph;
  let spSourceId: string;
  let spRunId: string;
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpanId = '00f067aa0ba902b7';

  beforeAll(async () => {
    receiver = await otlpReceiver();
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: ADMIN, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'clearance-test' } });
    tracing = await startTracing(h.config);
    app = createApp(h, createAuthenticator(h.config));
    const corpus = path.join(h.dir, 'corpus');
    await mkdir(corpus, { recursive: true });
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['group:engineering'] }));
    await writeFile(path.join(corpus, 'oncall.md'), '# On-call\n\nPage the incident commander for an outage.');
    sourceId = (await (await req('/v1/sources', { token: ADMIN, body: { name: 'eng', type: 'filesystem', config: { path: corpus } } })).json()).id;
    const run = await syncNow(h, sourceId);
    expect(run.status).toBe('succeeded');
    runId = run.runId;
    const agent = await (await req('/v1/agents', { token: ADMIN, body: { name: 'helpdesk-bot', sourceIds: [sourceId] } })).json();
    agentId = agent.id;
    const alice = await mintDevToken({ email: 'Alice@acme.test', groups: ['engineering'], dataDir: h.config.dataDir });
    const res = await req('/v1/search', {
      token: alice, body: { query: 'incident outage', topK: 5, mode: 'hybrid' },
      headers: { 'x-agent-key': agent.key, traceparent: `00-${traceId}-${callerSpanId}-01` },
    });
    expect(res.status).toBe(200);
    const { results } = await res.json();
    expect(results.length).toBeGreaterThan(0);
    expect((await req(`/v1/documents/${results[0].documentId}`, { token: alice, headers: { 'x-agent-key': agent.key } })).status).toBe(200);
    // The same search as an MCP tool call, through the same agent key.
    const mcp = await req('/mcp', {
      token: alice, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { query: 'outage', topK: 3 } } },
      headers: { accept: 'application/json, text/event-stream', 'x-agent-key': agent.key },
    });
    expect(mcp.status).toBe(200);
    // A 404 through the same middleware.
    expect((await req('/v1/sources/not-a-uuid', { token: ADMIN })).status).toBe(404);

    // Upstream calls: a SharePoint source on a fake Graph (token endpoint, Graph API, downloads).
    graph = await startFakeGraph();
    const ana = graph.addUser('ana@contoso.test');
    const site = graph.addSite('Intranet');
    const drive = graph.addDrive(site.id, 'Documents', { permissions: [{ user: ana.id }] });
    graph.addFile(drive.id, '/Welcome.md', '# Welcome\n\nStart here.');
    const sp = await req('/v1/sources', { token: ADMIN, body: { name: 'intranet', type: 'sharepoint', ...graph.sourceConfig({ siteIds: [site.id] }) } });
    expect(sp.status).toBe(201);
    spSourceId = (await sp.json()).id;
    const spRun = await syncNow(h, spSourceId);
    expect(spRun.status).toBe('succeeded');
    spRunId = spRun.runId;
    await tracing.shutdown();
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await h?.cleanup();
    await graph?.close();
    await receiver?.close();
  });

  const one = (pred: (s: Span) => boolean) => {
    const found = receiver.spans.filter(pred);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it('exports JSON over OTLP/HTTP under the configured service name', () => {
    expect(receiver.contentTypes.every((t) => t.startsWith('application/json'))).toBe(true);
    expect(receiver.spans.length).toBeGreaterThan(0);
    expect(new Set(receiver.spans.map((s) => s.service))).toEqual(new Set(['clearance-test']));
  });

  it('a search request: a server span continuing the caller\'s trace, with route, status, user and agent', () => {
    const http = one((s) => s.name === 'POST /v1/search');
    expect(http.kind).toBe(2); // SERVER
    expect(http.traceId).toBe(traceId);
    expect(http.parentSpanId).toBe(callerSpanId);
    expect(http.attrs).toMatchObject({
      'http.request.method': 'POST', 'http.route': '/v1/search', 'http.response.status_code': 200, 'url.path': '/v1/search',
      'enduser.id': 'alice@acme.test', 'clearance.agent.id': agentId, 'clearance.agent.name': 'helpdesk-bot',
    });
  });

  it('the search span is the request span\'s child, with mode, topK, result count, user, agent and sources', () => {
    const http = one((s) => s.name === 'POST /v1/search');
    const search = one((s) => s.name === 'search' && s.traceId === traceId);
    expect(search.traceId).toBe(traceId);
    expect(search.parentSpanId).toBe(http.spanId);
    expect(search.attrs).toMatchObject({
      'clearance.search.mode': 'hybrid', 'clearance.search.top_k': 5, 'enduser.id': 'alice@acme.test',
      'clearance.agent.id': agentId, 'clearance.agent.name': 'helpdesk-bot', 'clearance.source.ids': [sourceId],
    });
    expect(search.attrs['clearance.search.results']).toBeGreaterThan(0);
    // The query text stays in the audit trail, out of traces.
    expect(JSON.stringify(search.attrs)).not.toContain('incident');
  });

  it('an MCP tool call: its search span is the child of the POST /mcp span, with user and agent', () => {
    const http = one((s) => s.name === 'POST /mcp');
    expect(http.attrs).toMatchObject({ 'http.route': '/mcp', 'http.response.status_code': 200, 'enduser.id': 'alice@acme.test', 'clearance.agent.name': 'helpdesk-bot' });
    const search = one((s) => s.name === 'search' && s.parentSpanId === http.spanId);
    expect(search.attrs).toMatchObject({ 'clearance.search.top_k': 3, 'enduser.id': 'alice@acme.test', 'clearance.agent.id': agentId });
  });

  it('a document fetch: route template, user, agent and the document\'s source', () => {
    const fetch = one((s) => s.name === 'GET /v1/documents/:id');
    expect(fetch.attrs).toMatchObject({ 'http.response.status_code': 200, 'enduser.id': 'alice@acme.test', 'clearance.agent.id': agentId, 'clearance.source.id': sourceId });
  });

  it('admin requests carry the route template and the source id', () => {
    const creates = receiver.spans.filter((s) => s.name === 'POST /v1/sources');
    expect(creates).toHaveLength(2);
    for (const create of creates) expect(create.attrs).toMatchObject({ 'http.route': '/v1/sources', 'http.response.status_code': 201, 'enduser.id': 'admin-token' });
    const miss = one((s) => s.attrs['url.path'] === '/v1/sources/not-a-uuid');
    expect(miss.attrs['http.response.status_code']).toBe(404);
    expect(miss.attrs['http.route']).toBe('/v1/sources/:id');
    expect(miss.attrs['clearance.source.id']).toBe('not-a-uuid');
  });

  it('a sync run: its own trace, with source, kind, run id, outcome and stats', () => {
    const sync = one((s) => s.name === 'sync.run' && s.attrs['clearance.source.id'] === sourceId);
    expect(sync.parentSpanId ?? '').toBe('');
    expect(sync.attrs).toMatchObject({
      'clearance.source.id': sourceId, 'clearance.source.kind': 'filesystem', 'clearance.run.id': runId,
      'clearance.sync.mode': 'full', 'clearance.sync.outcome': 'succeeded', 'clearance.sync.stats.added': 1, 'clearance.sync.stats.failed': 0,
    });
  });

  it('upstream calls are client spans under the request or the sync run that made them: method, host, path without query, status', () => {
    const { port } = new URL(graph.url);
    const upstream = receiver.spans.filter((s) => s.kind === 3); // CLIENT
    expect(upstream.length).toBeGreaterThan(0);
    for (const u of upstream) {
      expect(u.attrs).toMatchObject({ 'server.address': '127.0.0.1', 'server.port': Number(port) });
      expect(String(u.attrs['url.full'])).not.toContain('?');
      expect(['GET', 'POST']).toContain(u.attrs['http.request.method']);
      expect(u.name).toBe(u.attrs['http.request.method']);
    }
    // The connection test of POST /v1/sources: token and Graph calls inside that request's trace.
    const create = receiver.spans.find((s) => s.name === 'POST /v1/sources' && s.attrs['http.response.status_code'] === 201 && upstream.some((u) => u.traceId === s.traceId))!;
    expect(create).toBeDefined();
    const underCreate = upstream.filter((u) => u.traceId === create.traceId);
    expect(underCreate.some((u) => u.attrs['http.request.method'] === 'POST' && u.attrs['http.response.status_code'] === 200)).toBe(true); // token
    // The sync: Graph listings and the file download are children of its sync.run span.
    const sync = one((s) => s.name === 'sync.run' && s.attrs['clearance.source.id'] === spSourceId);
    expect(sync.attrs).toMatchObject({ 'clearance.source.kind': 'sharepoint', 'clearance.run.id': spRunId, 'clearance.sync.outcome': 'succeeded', 'clearance.sync.stats.added': 1 });
    const underSync = upstream.filter((u) => u.parentSpanId === sync.spanId);
    expect(underSync.filter((u) => u.attrs['http.request.method'] === 'GET' && u.attrs['http.response.status_code'] === 200).length).toBeGreaterThan(1);
  });
});

describe('OpenTelemetry off (no endpoint)', () => {
  it('registers nothing and hands out spans that record nothing', async () => {
    const { loadConfig } = await import('../src/config.ts');
    const { inSpan, tracingEnabled } = await import('../src/telemetry/tracing.ts');
    const tracing = await startTracing(loadConfig({ CLEARANCE_DATA_DIR: '/tmp/unused' }));
    expect(tracing.enabled).toBe(false);
    expect(tracingEnabled()).toBe(false);
    expect(await inSpan('x', {}, async (span) => span.isRecording())).toBe(false);
  });

  it('a bad endpoint stops start-up with one line naming the variable', async () => {
    const { loadConfig } = await import('../src/config.ts');
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/^Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be a URL$/);
    expect(() => loadConfig({ OTEL_SDK_DISABLED: 'maybe' })).toThrow(/OTEL_SDK_DISABLED/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/^Invalid configuration: OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json/);
  });
});

describe('OpenTelemetry over OTLP/HTTP protobuf (the default encoding)', () => {
  it('posts application/x-protobuf to <endpoint>/v1/traces, with the configured headers', async () => {
    const { loadConfig } = await import('../src/config.ts');
    const { inSpan } = await import('../src/telemetry/tracing.ts');
    const seen: { url?: string; type?: string; key?: string; bytes: number }[] = [];
    const server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => { bytes += d.length; });
      req.on('end', () => {
        seen.push({ url: req.url, type: req.headers['content-type'], key: req.headers['x-api-key'] as string | undefined, bytes });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s%20ecret' });
      const tracing = await startTracing(config);
      await inSpan('probe', {}, async () => undefined);
      await tracing.shutdown();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ url: '/v1/traces', type: 'application/x-protobuf', key: 's ecret' });
      expect(seen[0]!.bytes).toBeGreaterThan(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

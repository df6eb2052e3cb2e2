import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { createAuthenticator } from '../src/identity/index.ts';
import { createHarness, type Harness } from './support/harness.ts';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; parameters?: { name: string; in: string }[]; security?: Record<string, string[]>[]; responses: Record<string, unknown> }>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string; name?: string; in?: string }> };
};
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** GET /openapi.json: a valid OpenAPI 3.1 document that describes every route the app registers. */
describe('OpenAPI document', () => {
  let h: Harness;
  let app: ReturnType<typeof createApp>;
  let doc: Doc;

  beforeAll(async () => {
    // PUBLIC_BASE_URL mounts the change-notification receivers, so every route the app can have is registered.
    h = await createHarness({ env: { AUTH_MODE: 'dev', ADMIN_TOKEN: 'test-admin-token-0123456789', PUBLIC_BASE_URL: 'https://clearance.example.test' } });
    app = createApp(h, createAuthenticator(h.config));
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = await res.json();
  });
  afterAll(() => h.cleanup());

  it('is served without credentials and validates as OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(structuredClone(doc) as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route registered on the app (method and path)', () => {
    const missing: string[] = [];
    for (const r of app.routes) {
      // Middleware patterns (`*`, `/v1/*`) are not routes.
      if (r.path.includes('*')) continue;
      const path = r.path.replace(/:(\w+)/g, '{$1}');
      const item = doc.paths[path];
      const method = r.method.toLowerCase();
      // `app.all` (MCP) and `app.use` on an exact path register ALL: some method of the path must be described.
      const ok = method === 'all' ? !!item && METHODS.some((m) => item[m]) : !!item?.[method];
      if (!ok) missing.push(`${r.method} ${r.path}`);
    }
    expect(missing).toEqual([]);
    // And nothing described that the app does not have.
    const registered = new Set(app.routes.filter((r) => !r.path.includes('*')).map((r) => r.path.replace(/:(\w+)/g, '{$1}')));
    expect(Object.keys(doc.paths).filter((p) => !registered.has(p))).toEqual([]);
  });

  it('derives request bodies and query parameters from the handlers\' zod schemas', () => {
    const search = doc.paths['/v1/search']!.post!;
    const body = search.requestBody!.content['application/json']!.schema as { properties: Record<string, { enum?: string[]; maximum?: number }>; required: string[]; additionalProperties: boolean };
    expect(body.required).toEqual(['query']);
    expect(body.properties.mode!.enum).toEqual(['hybrid', 'vector', 'keyword']);
    expect(body.properties.topK!.maximum).toBe(100);
    expect(body.additionalProperties).toBe(false);
    const audit = doc.paths['/v1/audit']!.get!;
    expect(audit.parameters!.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(
      expect.arrayContaining(['user', 'agent', 'action', 'documentId', 'from', 'to', 'format']),
    );
    expect(doc.paths['/v1/documents/{id}']!.get!.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'id', in: 'path' })]));
  });

  it('names the security schemes and each operation\'s, from the route guard', () => {
    expect(doc.components.securitySchemes).toMatchObject({
      oidc: { type: 'http', scheme: 'bearer' }, adminToken: { type: 'http', scheme: 'bearer' }, agentKey: { type: 'apiKey', in: 'header', name: 'X-Agent-Key' },
    });
    expect(doc.paths['/v1/search']!.post!.security).toContainEqual({ oidc: [], agentKey: [] });
    expect(doc.paths['/v1/sources']!.post!).toMatchObject({ 'x-required-role': 'admin', security: [{ adminToken: [] }, { oidc: [] }] });
    expect(doc.paths['/v1/audit']!.get!).toMatchObject({ 'x-required-role': 'compliance' });
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
    expect(doc.paths['/v1/notifications/sharepoint']!.post!.security).toEqual([]);
  });

  it('errors are application/problem+json', () => {
    const e403 = (doc as unknown as { components: { responses: Record<string, { content: Record<string, unknown> }> } }).components.responses.E403!;
    expect(Object.keys(e403.content)).toEqual(['application/problem+json']);
    expect(doc.paths['/v1/sources/{id}']!.get!.responses['404']).toEqual({ $ref: '#/components/responses/E404' });
  });
});

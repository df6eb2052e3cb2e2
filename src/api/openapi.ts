import { z } from 'zod';
import { createSourceSchema, freshnessPolicySchema, patchSourceSchema } from '../sources/service.ts';
import { SEARCH_MODES } from '../retrieval/fusion.ts';
import { searchBodySchema } from './assistant.ts';
import { requiredRole, type Role } from './guard.ts';
import { agentPatchSchema, agentSchema, syncSchema } from './routes/admin.ts';
import { ackSchema, alertListQuerySchema } from './routes/freshness.ts';
import { auditQuerySchema, explainQuerySchema, quarantineSchema } from './routes/governance.ts';

/**
 * GET /openapi.json (CONTRACT §3): an OpenAPI 3.1 description of every route. Request bodies and
 * query parameters are converted from the very zod schemas the handlers parse with
 * (`z.toJSONSchema`, input side: what a client sends), and each operation's security comes from
 * the route guard (src/api/guard.ts), so neither can drift from what the server enforces.
 * test/openapi.test.ts checks that every route registered on the app is described here.
 */

type JsonSchema = Record<string, unknown>;

/** A request schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), without the `$schema` marker. */
function jsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** An object schema's properties as query parameters. */
function queryParameters(schema: z.ZodType): JsonSchema[] {
  const js = jsonSchema(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: s }));
}

// Response shapes: documentation only (handlers build their answers directly).
const searchResult = z.object({
  documentId: z.string(), chunkId: z.string(), sourceId: z.string(), sourceType: z.string(), title: z.string(), url: z.string().nullable(),
  text: z.string(), context: z.string().describe('the chunk widened with neighbouring text of its document'), sectionPath: z.array(z.string()),
  score: z.number(), lastModified: z.string(), freshness: z.object({ status: z.enum(['fresh', 'stale']), ageDays: z.number() }),
});
const runStats = z.object({
  seen: z.number(), added: z.number(), updated: z.number(), aclUpdated: z.number(), deleted: z.number(), unchanged: z.number(),
  failed: z.number(), chunksEmbedded: z.number(), skipped: z.number(),
});
const run = z.object({
  runId: z.string(), sourceId: z.string(), mode: z.enum(['incremental', 'full']), status: z.enum(['queued', 'running', 'succeeded', 'failed']),
  startedAt: z.string().nullable(), finishedAt: z.string().nullable(), error: z.string().nullable().optional(), stats: runStats, warnings: z.array(z.string()),
});
const source = z.object({
  id: z.string(), name: z.string(), type: z.string(), config: z.record(z.string(), z.unknown()),
  schedule: z.object({ intervalSeconds: z.number() }).nullable(), freshness: z.unknown(), status: z.string(), enabled: z.boolean(),
  createdAt: z.string(), updatedAt: z.string(),
});
const agent = z.object({
  id: z.string(), name: z.string(), sourceIds: z.array(z.string()), createdAt: z.string(), expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(), status: z.enum(['active', 'revoked', 'expired']),
});
const problem = z.object({
  type: z.string(), title: z.string(), status: z.number().int(), detail: z.string(), instance: z.string().optional().describe('urn:request:<request id>'),
});
const jsonRpc = z.object({
  jsonrpc: z.literal('2.0'), id: z.union([z.string(), z.number()]).optional(), method: z.string().describe('e.g. initialize, tools/list, tools/call'),
  params: z.record(z.string(), z.unknown()).optional(),
}).describe('A JSON-RPC 2.0 message (or a batch) of the Model Context Protocol; tools: search, fetch_document');

interface Op {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI form: `{param}`. */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  /** The body may be left out (an empty POST). */
  bodyOptional?: boolean;
  query?: z.ZodType;
  /** Success status → description and (JSON) schema; `null` schema for no body. */
  ok: [status: number, description: string, schema?: z.ZodType | null, contentType?: string];
  /** Extra error statuses beyond those every guarded route can answer. */
  errors?: number[];
  csv?: boolean;
  agentKey?: boolean;
  /** Not behind the bearer-token guard: public, or proving itself some other way. */
  open?: string;
}

const anyJson = z.record(z.string(), z.unknown());

const OPS: Op[] = [
  // Operations: no credentials.
  { method: 'get', path: '/healthz', tag: 'operations', summary: 'Liveness', ok: [200, 'alive', z.object({ status: z.literal('ok') })], open: 'public' },
  { method: 'get', path: '/readyz', tag: 'operations', summary: 'Readiness: stores and queue reachable', ok: [200, 'ready (503 with the same shape when not)', z.object({ status: z.string(), checks: z.record(z.string(), z.string()) })], open: 'public' },
  { method: 'get', path: '/metrics', tag: 'operations', summary: 'Prometheus metrics', ok: [200, 'text exposition format', null, 'text/plain'], open: 'public' },
  { method: 'get', path: '/openapi.json', tag: 'operations', summary: 'This document', ok: [200, 'OpenAPI 3.1', anyJson], open: 'public' },
  { method: 'get', path: '/', tag: 'console', summary: 'The web console', ok: [200, 'HTML page', null, 'text/html'], open: 'public' },
  { method: 'get', path: '/console/{file}', tag: 'console', summary: 'A console asset (script or stylesheet)', ok: [200, 'the file', null, 'text/javascript'], errors: [404], open: 'public' },

  // Assistants.
  { method: 'post', path: '/v1/search', tag: 'assistants', summary: 'Permission-filtered search (hybrid, vector or keyword)', body: searchBodySchema, agentKey: true, ok: [200, 'the visible chunks, best first', z.object({ results: z.array(searchResult) })], errors: [429] },
  { method: 'get', path: '/v1/documents/{id}', tag: 'assistants', summary: 'A readable document: metadata and chunks in order (404 when not readable)', agentKey: true, ok: [200, 'the document', anyJson], errors: [404] },
  { method: 'post', path: '/mcp', tag: 'assistants', summary: 'MCP over streamable HTTP (stateless): tools search and fetch_document', body: jsonRpc, agentKey: true, ok: [200, 'the JSON-RPC answer', anyJson], errors: [429] },

  // Admin: sources, runs, agent keys.
  { method: 'post', path: '/v1/sources', tag: 'sources', summary: 'Add a source (the connection is tested first)', body: createSourceSchema, ok: [201, 'the source', source], errors: [422] },
  { method: 'get', path: '/v1/sources', tag: 'sources', summary: 'List sources', ok: [200, 'sources', z.object({ sources: z.array(source) })] },
  { method: 'get', path: '/v1/sources/{id}', tag: 'sources', summary: 'A source, with diagnostics and notification status', ok: [200, 'the source', source], errors: [404] },
  { method: 'patch', path: '/v1/sources/{id}', tag: 'sources', summary: 'Change a source; `enabled: false` hides its documents at once', body: patchSourceSchema, ok: [200, 'the source', source], errors: [404, 422] },
  { method: 'delete', path: '/v1/sources/{id}', tag: 'sources', summary: 'Remove a source and everything indexed from it', ok: [204, 'removed', null], errors: [404] },
  { method: 'post', path: '/v1/sources/{id}/freshness/preview', tag: 'sources', summary: 'What a freshness policy would decide for the source\'s documents', body: freshnessPolicySchema, ok: [200, 'the preview', anyJson], errors: [404] },
  { method: 'post', path: '/v1/sources/{id}/sync', tag: 'sources', summary: 'Queue a sync', body: syncSchema, bodyOptional: true, ok: [202, 'queued (or the run already queued)', z.object({ runId: z.string(), deduplicated: z.boolean() })], errors: [404, 409] },
  { method: 'get', path: '/v1/sources/{id}/runs', tag: 'sources', summary: 'The source\'s latest runs', ok: [200, 'runs', z.object({ runs: z.array(run) })], errors: [404] },
  { method: 'get', path: '/v1/runs/{runId}', tag: 'sources', summary: 'One run', ok: [200, 'the run', run], errors: [404] },
  { method: 'post', path: '/v1/agents', tag: 'agents', summary: 'Create an agent key (shown once)', body: agentSchema, ok: [201, 'the agent and its key', agent.extend({ key: z.string() })] },
  { method: 'get', path: '/v1/agents', tag: 'agents', summary: 'List agent keys', ok: [200, 'agents', z.object({ agents: z.array(agent) })] },
  { method: 'get', path: '/v1/agents/{id}', tag: 'agents', summary: 'One agent key', ok: [200, 'the agent', agent], errors: [404] },
  { method: 'patch', path: '/v1/agents/{id}', tag: 'agents', summary: 'Set or clear an agent key\'s expiry', body: agentPatchSchema, ok: [200, 'the agent', agent], errors: [404] },
  { method: 'delete', path: '/v1/agents/{id}', tag: 'agents', summary: 'Revoke an agent key at once', ok: [204, 'revoked', null], errors: [404] },

  // Compliance: audit, access, quarantine, freshness.
  { method: 'get', path: '/v1/audit', tag: 'governance', summary: 'The audit trail, newest first (CSV with Accept: text/csv or format=csv)', query: auditQuerySchema, csv: true, ok: [200, 'records', z.object({ records: z.array(anyJson), nextBefore: z.number().nullable() })] },
  { method: 'get', path: '/v1/audit/verify', tag: 'governance', summary: 'Verify the hash chain', ok: [200, 'the verdict', z.object({ ok: z.boolean(), records: z.number(), firstBrokenId: z.string().optional() }).loose()] },
  { method: 'get', path: '/v1/access/explain', tag: 'governance', summary: 'Why a user can (or cannot) read a document', query: explainQuerySchema, ok: [200, 'the explanation', z.object({ allowed: z.boolean(), documentId: z.string(), user: z.string(), asOf: z.string().nullable(), reasons: z.array(z.object({ principal: z.string(), via: z.array(z.string()) })), denial: z.string().optional() }).loose()] },
  { method: 'get', path: '/v1/documents/{id}/access', tag: 'governance', summary: 'A document\'s resolved principals and every known user they reach', ok: [200, 'principals and users', anyJson], errors: [404] },
  { method: 'post', path: '/v1/documents/{id}/quarantine', tag: 'governance', summary: 'Hide a document from every search and fetch', body: quarantineSchema, ok: [201, 'quarantined', anyJson], errors: [404] },
  { method: 'delete', path: '/v1/documents/{id}/quarantine', tag: 'governance', summary: 'Lift a quarantine', ok: [204, 'lifted', null], errors: [404] },
  { method: 'get', path: '/v1/quarantine', tag: 'governance', summary: 'Quarantined documents', ok: [200, 'documents', z.object({ documents: z.array(anyJson) })] },
  { method: 'get', path: '/v1/freshness/alerts', tag: 'freshness', summary: 'Freshness alerts (CSV with Accept: text/csv)', query: alertListQuerySchema, csv: true, ok: [200, 'alerts', z.object({ alerts: z.array(anyJson), nextCursor: z.string().nullable().optional() })] },
  { method: 'get', path: '/v1/freshness/summary', tag: 'freshness', summary: 'Counts of alerts by state and source', ok: [200, 'the summary', anyJson] },
  { method: 'get', path: '/v1/freshness/alerts/{id}', tag: 'freshness', summary: 'One alert and its history', ok: [200, 'the alert', anyJson], errors: [404] },
  { method: 'post', path: '/v1/freshness/alerts/{id}/ack', tag: 'freshness', summary: 'Acknowledge an alert (optionally snoozed)', body: ackSchema, ok: [200, 'the alert', anyJson], errors: [404] },

  // Change notifications (only when PUBLIC_BASE_URL is set): each proves itself with its subscription's secret.
  { method: 'post', path: '/v1/notifications/sharepoint', tag: 'notifications', summary: 'Microsoft Graph change notifications (and the subscription validation handshake)', query: z.object({ validationToken: z.string().optional() }), ok: [202, 'accepted (200 text/plain echo for a validation)', null], errors: [400, 403, 413, 429], open: 'the subscription\'s clientState' },
  { method: 'post', path: '/v1/notifications/google_drive', tag: 'notifications', summary: 'Google Drive changes.watch channel notifications', ok: [200, 'accepted', null], errors: [400, 403, 429], open: 'the channel token (X-Goog-Channel-Token)' },
  { method: 'post', path: '/v1/notifications/confluence', tag: 'notifications', summary: 'Confluence webhooks', query: z.object({ source: z.string().optional() }), ok: [202, 'accepted (200 when the space is not indexed)', null], errors: [400, 403, 413, 429], open: 'the webhook\'s HMAC signature' },
];

const ERROR_TEXT: Record<number, string> = {
  400: 'Bad Request: the body or a parameter does not validate',
  401: 'Unauthorized: no or an invalid bearer token',
  403: 'Forbidden: the caller lacks the role, or the agent key is refused',
  404: 'Not Found (also what a document the caller may not read looks like)',
  409: 'Conflict',
  413: 'Payload Too Large (MAX_BODY_BYTES)',
  415: 'Unsupported Media Type: send application/json',
  422: 'Unprocessable: the upstream connection test failed (detail says why)',
  429: 'Too Many Requests (Retry-After says when to try again)',
};

const ROLE_SECURITY: Record<Role, Record<string, string[]>[]> = {
  user: [{ oidc: [] }, { oidc: [], agentKey: [] }],
  compliance: [{ oidc: [] }, { adminToken: [] }],
  admin: [{ adminToken: [] }, { oidc: [] }],
};

function operation(op: Op): JsonSchema {
  const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (op.query) params.push(...(queryParameters(op.query) as typeof params));
  if (op.agentKey) params.push({ name: 'X-Agent-Key', in: 'header', required: false, schema: { type: 'string' } } as (typeof params)[number]);
  const guarded = !op.open;
  // The guard decides by method and concrete path; any id stands in for a path parameter.
  const role = guarded ? requiredRole(op.method, op.path.replace(/\{\w+\}/g, 'x')) : null;
  const [status, description, schema, contentType = 'application/json'] = op.ok;
  const content: JsonSchema = {};
  if (schema !== null) content[contentType] = { schema: schema ? jsonSchema(schema) : {} };
  if (op.csv) content['text/csv'] = { schema: { type: 'string' } };
  const responses: JsonSchema = { [status]: Object.keys(content).length ? { description, content } : { description } };
  const errors = new Set([...(op.body || op.query ? [400] : []), ...(op.body ? [413, 415] : []), ...(guarded ? [401, 403] : []), ...(op.errors ?? [])]);
  for (const e of [...errors].sort()) responses[e] = { $ref: `#/components/responses/E${e}` };
  if (guarded) responses.default = { $ref: '#/components/responses/Error' };
  return {
    operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    summary: op.summary,
    tags: [op.tag],
    ...(params.length ? { parameters: params } : {}),
    ...(op.body ? { requestBody: { required: !op.bodyOptional, content: { 'application/json': { schema: jsonSchema(op.body) } } } } : {}),
    responses,
    security: role ? ROLE_SECURITY[role] : [],
    ...(role ? { 'x-required-role': role } : { 'x-authentication': op.open }),
  };
}

let cached: JsonSchema | null = null;

/** The document (built once: it depends on code only, not on configuration). */
export function openApiDocument(): JsonSchema {
  if (cached) return cached;
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPS) (paths[op.path] ??= {})[op.method] = operation(op);
  const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'Clearance',
      version: '0.1.0',
      description: 'Permission-aware RAG ingestion and retrieval. Every error is application/problem+json. ' +
        `Search modes: ${SEARCH_MODES.join(', ')}. The /v1/notifications routes exist only when PUBLIC_BASE_URL is set.`,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [...new Set(OPS.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        oidc: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The end user\'s token from the identity provider (OIDC_ISSUER); its groups claim may grant the admin (ADMIN_GROUP) or compliance (COMPLIANCE_GROUP) role. With AUTH_MODE=dev, a token minted by `clearance token`.' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN: the bootstrap admin token (admin and compliance routes).' },
        agentKey: { type: 'apiKey', in: 'header', name: 'X-Agent-Key', description: 'An agent key (POST /v1/agents), sent with the user\'s bearer token: the effective scope is the user\'s permissions intersected with the agent\'s sources.' },
      },
      schemas: { Problem: jsonSchema(problem) },
      responses: {
        ...Object.fromEntries(Object.entries(ERROR_TEXT).map(([s, d]) => [`E${s}`, { description: d, content: problemContent }])),
        Error: { description: 'Any other error (500 internal, 503 unavailable)', content: problemContent },
      },
    },
  };
  return cached;
}

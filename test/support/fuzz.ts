import fc from 'fast-check';

/**
 * Hostile HTTP requests, generated: every registered route (and random paths) with random and
 * wrong-typed JSON, huge and deeply nested bodies, odd unicode, bad headers and tokens. Shared by
 * the CI fuzz test (test/http.fuzz.test.ts) and the soak command (`npx clearance bench fuzz`).
 */

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Which identity the request carries, so the response can be checked for other people's text. */
  as: string;
}

export interface FuzzIdentities {
  /** Named bearer tokens (users and the admin); one is picked per request, or a bad one. */
  tokens: Record<string, string>;
  /** Ids that exist (sources, runs, documents, alerts, agents), so some requests reach real rows. */
  ids: string[];
}

const ODD_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\uD800', '\uDFFF', '\u202Eevil', '\uFEFF', '💥'.repeat(100), 'é'.normalize('NFD'),
  '../../etc/passwd', '..%2F..%2F', '%00', '%', '%E0%A4%A', '<script>alert(1)</script>', "' OR '1'='1", '{"$ne":null}',
  'user:alice@acme.test', 'everyone', 'sgroup:x/y', '\\', '\r\n\r\nGET / HTTP/1.1', '0'.repeat(5000),
];

const oddString = fc.oneof(
  fc.constantFrom(...ODD_STRINGS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

/** JSON values of every shape, including the wrong one for any field. */
const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    oddString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, -1, 0, 1e308, 101, 100, 1),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(oddString, fc.constantFrom('query', 'topK', 'filter', 'sourceIds', 'name', 'type', 'config', 'credentials', 'mode', 'note', 'snoozeDays', 'enabled', 'path', '__proto__', 'constructor')), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** Bodies shaped like what the routes expect, with one part wrong. */
const plausibleBody = fc.oneof(
  fc.record({ query: oddString, topK: fc.oneof(fc.integer({ min: -5, max: 200 }), oddString as fc.Arbitrary<unknown>), filter: fc.option(jsonish) }, { requiredKeys: ['query'] }),
  fc.record({ name: oddString, type: fc.constantFrom('filesystem', 'sharepoint', 'google_drive', 'confluence', 'nope'), config: jsonish, credentials: fc.option(jsonish) }),
  fc.record({ note: oddString, snoozeDays: jsonish }),
  fc.record({ mode: fc.oneof(fc.constantFrom('full', 'incremental'), oddString) }),
  fc.record({ name: oddString, sourceIds: jsonish }),
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), method: fc.constantFrom('tools/list', 'tools/call', 'initialize', 'nope'), params: jsonish }),
);

function deepNest(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

const bodyArb: fc.Arbitrary<string | Uint8Array | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: plausibleBody.map((b) => JSON.stringify(b)) },
  { weight: 3, arbitrary: jsonish.map((b) => JSON.stringify(b) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 10, max: 20_000 }), fc.constantFrom('array' as const, 'object' as const)).map(([d, k]) => deepNest(d, k)) },
  { weight: 1, arbitrary: fc.integer({ min: 50_000, max: 300_000 }).map((n) => JSON.stringify({ query: 'x'.repeat(n) })) },
);

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', 'application/json; charset=latin1', ''];

/** Percent-encodes anything, lone surrogates included (as bytes no decoder accepts, on purpose). */
function enc(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...Buffer.from(v, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('') + '%ED%A0%80';
  }
}

/** Fills route parameters (`:id`) with existing ids, UUIDs, or junk. */
function pathFor(template: string, seg: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const params = template.match(/:[A-Za-z]+/g) ?? [];
  if (params.length === 0) return fc.constant(template);
  return fc.tuple(...params.map(() => seg)).map((vals) => {
    let p = template;
    for (const v of vals) p = p.replace(/:[A-Za-z]+/, enc(v));
    return p;
  });
}

export function fuzzRequests(routes: { method: string; path: string }[], who: FuzzIdentities): fc.Arbitrary<FuzzRequest> {
  const concrete = routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*'));
  const seg = fc.oneof(fc.constantFrom(...(who.ids.length ? who.ids : ['x'])), fc.uuid(), oddString.filter((s) => s.length > 0));
  const routePath = fc.constantFrom(...concrete).chain((r) => pathFor(r.path, seg).map((path) => ({ method: r.method, path })));
  const randomPath = fc.tuple(fc.constantFrom('/v1/', '/mcp/', '/', '/v1/sources/', '/v1/documents/', '/v1/freshness/'), fc.array(seg, { maxLength: 3 }))
    .map(([prefix, parts]) => ({ method: 'GET', path: prefix + parts.map(enc).join('/') }));
  const query = fc.dictionary(fc.constantFrom('status', 'sourceId', 'kind', 'limit', 'cursor', 'user', 'agent', 'from', 'to', 'action', 'documentId', 'x'), oddString, { maxKeys: 3 })
    .map((q) => { const s = new URLSearchParams(q).toString(); return s ? `?${s}` : ''; });
  const names = Object.keys(who.tokens);
  const auth = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...names).map((n) => ({ as: n, header: `Bearer ${who.tokens[n]}` as string | undefined })) },
    { weight: 1, arbitrary: fc.constant({ as: 'nobody', header: undefined as string | undefined }) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Bearer a.b.c', `Bearer ${'x'.repeat(10_000)}`, 'bearer\u0000x', 'Bearer eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAYi5jIn0.')
      .map((h) => ({ as: 'nobody', header: h as string | undefined })) },
  );
  return fc.record({
    target: fc.oneof({ weight: 5, arbitrary: routePath }, { weight: 1, arbitrary: randomPath }),
    method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'), { freq: 4 }),
    query,
    auth,
    contentType: fc.constantFrom(...CONTENT_TYPES),
    agentKey: fc.option(fc.oneof(oddString.filter((s) => /^[\x20-\x7e]*$/.test(s)), fc.constant('clr_nonexistent')), { freq: 5 }),
    requestId: fc.option(oddString.filter((s) => /^[\x20-\x7e]*$/.test(s)), { freq: 5 }),
    body: bodyArb,
  }).map((r) => {
    const headers: Record<string, string> = {};
    if (r.auth.header !== undefined) headers.authorization = r.auth.header;
    if (r.contentType) headers['content-type'] = r.contentType;
    if (r.agentKey !== null) headers['x-agent-key'] = r.agentKey;
    if (r.requestId !== null) headers['x-request-id'] = r.requestId;
    const method = r.method ?? r.target.method;
    const body = method === 'GET' || method === 'HEAD' ? undefined : r.body;
    return { method, path: r.target.path + r.query, headers, body, as: r.auth.as };
  });
}

/** Text a response must never contain: internals (stack frames, file paths, SQL) of any kind. */
export const INTERNALS = [/\n\s+at .+\(.*:\d+:\d+\)/, /node_modules/, /\/src\/[\w/-]+\.ts/, /\bat async\b/, /SELECT .* FROM/i, /syntax error at or near/i, /TypeError:|ReferenceError:|RangeError:/];

import { ROOT_CONTEXT, propagation, type TextMapGetter } from '@opentelemetry/api';
import type { Context } from 'hono';
import type { AppEnv } from '../api/env.ts';
import { ATTR, SpanKind, SpanStatusCode, inSpan, tracingEnabled } from './tracing.ts';

const headerGetter: TextMapGetter<Headers> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => {
    const keys: string[] = [];
    h.forEach((_, k) => keys.push(k));
    return keys;
  },
};

/** Hono's catch-all patterns are middleware, not routes: a request that only met those matched no route. */
const isRoutePattern = (p: string) => p !== '' && p !== '*' && !p.endsWith('/*');

/**
 * One server span per request, continuing the caller's trace when it sent a W3C `traceparent`.
 * Named and tagged with the route template (`POST /v1/search`, `GET /v1/sources/:id`), never the
 * raw path, so ids do not explode the span names.
 */
export async function httpTracing(c: Context<AppEnv>, next: () => Promise<void>): Promise<void> {
  if (!tracingEnabled()) return next();
  const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter);
  const method = c.req.method;
  await inSpan(method, {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': method, 'url.path': c.req.path, 'url.scheme': new URL(c.req.url).protocol.replace(':', '') },
  }, async (span) => {
    await next();
    // After routing and the handler (and onError) ran: the route that answered and the status sent.
    const route = c.req.routePath;
    if (isRoutePattern(route)) {
      span.setAttribute('http.route', route);
      span.updateName(`${method} ${route}`);
    }
    const status = c.res.status;
    span.setAttribute('http.response.status_code', status);
    const requestId = c.get('requestId');
    if (requestId) span.setAttribute(ATTR.requestId, requestId);
    const caller = c.get('ctx')?.caller;
    const user = caller?.email ?? (caller?.kind === 'admin-token' ? 'admin-token' : null);
    if (user) span.setAttribute('enduser.id', user);
    const sourceId = route.startsWith('/v1/sources/:id') ? c.req.param('id') : undefined;
    if (sourceId) span.setAttribute(ATTR.sourceId, sourceId);
    // Server spans fail on 5xx only: a 4xx is the caller's error, not the service's.
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  }, parent);
}

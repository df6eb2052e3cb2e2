import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestContext, type Services } from '../context.ts';
import { AppError, badRequest, unauthorized } from '../errors.ts';
import { metrics } from '../metrics.ts';
import type { AppEnv, Authenticator } from './env.ts';
import { authorize } from './guard.ts';
import { mcpRoutes } from './mcp.ts';
import { problemResponse } from './problem.ts';
import { RateLimiter } from './rate-limit.ts';
import { adminRoutes } from './routes/admin.ts';
import { governanceRoutes } from './routes/governance.ts';
import { auditTrail, recordDenied } from './audit-trail.ts';
import { freshnessRoutes } from './routes/freshness.ts';
import { notificationRoutes } from './routes/notifications.ts';
import { exposeSubscriptionExpiry } from '../notifications/status.ts';
import { opsRoutes } from './routes/ops.ts';
import { searchRoutes } from './routes/search.ts';
import { httpTracing } from '../telemetry/http.ts';

export type { AppEnv, Authenticator } from './env.ts';

export function createApp(services: Services, auth: Authenticator) {
  const app = new Hono<AppEnv>();

  app.use('*', httpTracing);
  app.use('*', async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    c.set('requestId', requestId);
    c.set('log', services.log.child({ requestId }));
    const started = performance.now();
    await next();
    c.header('x-request-id', requestId);
    const route = c.req.routePath || 'unmatched';
    metrics.httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, (performance.now() - started) / 1000);
  });
  // A NUL in the path or query is refused before any route (and any store) sees it.
  app.use('*', async (c, next) => {
    const nul = (v: string) => v.includes('\u0000') || v.includes('%00');
    if (nul(c.req.path) || Object.entries(c.req.queries()).some(([k, vs]) => nul(k) || vs.some(nul))) {
      throw badRequest('text may not contain NUL characters');
    }
    await next();
  });
  app.onError((err, c) => problemResponse(c, err));
  app.notFound((c) => problemResponse(c, new AppError(404, 'Not Found', 'no such resource')));

  const limit = bodyLimit({
    maxSize: services.config.MAX_BODY_BYTES,
    onError: (c) => {
      const res = problemResponse(c, new AppError(413, 'Payload Too Large', `the body exceeds ${services.config.MAX_BODY_BYTES} bytes`));
      // The rest of the oversized body is never read, so this connection cannot carry another
      // request: say so, or a pooled keep-alive client would send its next request into a socket
      // the server is about to drop.
      res.headers.set('connection', 'close');
      // Read and discard what the client is still sending, so closing does not reset the socket
      // under it before it has read the 413.
      (c.env as { incoming?: { resume?: () => void } } | undefined)?.incoming?.resume?.();
      return res;
    },
  });

  // Every API route needs a caller holding the route's role (src/api/guard.ts); the per-request
  // context is built once here.
  const authed = async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const header = c.req.header('authorization');
    if (!header) throw unauthorized();
    const caller = await auth.authenticate(header);
    try {
      authorize(caller, c.req.method, c.req.path);
    } catch (err) {
      await recordDenied(services.metadata, c, caller, (err as Error).message);
      throw err;
    }
    c.set('ctx', requestContext(services, caller, c.get('requestId')));
    await next();
  };
  // Change notifications prove themselves with their subscription's secret, not a bearer token.
  const receivers = services.config.PUBLIC_BASE_URL ? notificationRoutes(services) : null;
  exposeSubscriptionExpiry(services);
  if (receivers) app.route('/v1/notifications', receivers);
  app.use('/v1/*', (c, next) => (receivers && c.req.path.startsWith('/v1/notifications/') ? next() : limit(c, next)));
  app.use('/v1/*', (c, next) => (receivers && c.req.path.startsWith('/v1/notifications/') ? next() : authed(c, next)));
  app.use('/v1/*', (c, next) => (receivers && c.req.path.startsWith('/v1/notifications/') ? next() : auditTrail(c, next)));
  app.use('/mcp', limit, authed);
  app.use('/mcp/*', limit, authed);

  // Searches cost an embedding and a vector scan: one caller must not starve the rest.
  const searches = new RateLimiter(services.config.SEARCH_RATE_LIMIT);
  const throttle = async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const caller = c.get('ctx').caller;
    searches.take(caller.email ?? caller.kind);
    await next();
  };
  app.use('/v1/search', (c, next) => (c.req.method === 'POST' ? throttle(c, next) : next()));
  app.use('/mcp', throttle);

  app.route('/', opsRoutes(services));
  app.route('/v1', adminRoutes());
  app.route('/v1', governanceRoutes());
  app.route('/v1', freshnessRoutes());
  app.route('/v1', searchRoutes());
  app.route('/mcp', mcpRoutes());
  return app;
}

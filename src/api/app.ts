import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { RequestContext, Services } from '../context.ts';
import { AppError, badRequest, unauthorized } from '../errors.ts';
import type { Caller } from '../types.ts';
import { metrics } from '../metrics.ts';
import { problemResponse } from './problem.ts';
import { adminRoutes } from './routes/admin.ts';
import { freshnessRoutes } from './routes/freshness.ts';
import { searchRoutes } from './routes/search.ts';
import { opsRoutes } from './routes/ops.ts';

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Caller>;
}

export type AppEnv = { Variables: { requestId: string; ctx: RequestContext; log: Services['log'] } };

/** Reads and validates a JSON body; malformed JSON is a 400 problem, never a 500. */
export async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) throw new AppError(415, 'Unsupported Media Type', 'send the body as application/json');
  try {
    return await c.req.json();
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

export function createApp(services: Services, auth: Authenticator) {
  const app = new Hono<AppEnv>();

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
  app.onError((err, c) => problemResponse(c, err));
  app.notFound((c) => problemResponse(c, new AppError(404, 'Not Found', 'no such resource')));

  const limit = bodyLimit({
    maxSize: services.config.MAX_BODY_BYTES,
    onError: (c) => problemResponse(c, new AppError(413, 'Payload Too Large', `the body exceeds ${services.config.MAX_BODY_BYTES} bytes`)),
  });

  // Every API route below needs a caller; the per-request context is built once here.
  const authed = async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const header = c.req.header('authorization');
    if (!header) throw unauthorized();
    const caller = await auth.authenticate(header);
    c.set('ctx', { ...services, caller, requestId: c.get('requestId') });
    await next();
  };
  app.use('/v1/*', limit, authed);
  app.use('/mcp', limit, authed);

  app.route('/', opsRoutes(services));
  app.route('/v1', adminRoutes());
  app.route('/v1', freshnessRoutes());
  app.route('/', searchRoutes());
  return app;
}

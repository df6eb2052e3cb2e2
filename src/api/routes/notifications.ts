import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Services } from '../../context.ts';
import type { NotificationSubscription } from '../../metadata/interface.ts';
import { AppError, badRequest } from '../../errors.ts';
import { receiveConfluence, type ConfluenceCandidate } from '../../notifications/confluence.ts';
import { receiveDrive } from '../../notifications/google-drive.ts';
import { NotificationIntake } from '../../notifications/intake.ts';
import { subscriptionManager } from '../../notifications/lifecycle.ts';
import { receiveGraph, type Reply } from '../../notifications/sharepoint.ts';
import { sourceCredentials } from '../../sources/connector.ts';
import { problemResponse } from '../problem.ts';
import { RateLimited, RateLimiter } from '../rate-limit.ts';

/** How long a looked-up subscription (or its absence) is remembered; at most this many are. */
const LOOKUP_CACHE_MS = 5_000;
const LOOKUP_CACHE_SIZE = 10_000;
/** How long a Confluence source's webhook secret is kept in memory between notifications. */
const SECRET_CACHE_MS = 10_000;

/**
 * Change-notification receivers (CONTRACT §3): no bearer token — each request proves itself with
 * the secret of its subscription, channel or webhook instead. Mounted only when PUBLIC_BASE_URL is
 * set; otherwise these paths do not exist.
 */
export function notificationRoutes(services: Services, intake = new NotificationIntake(services)) {
  const r = new Hono();
  const manager = subscriptionManager(services);
  const limiter = new RateLimiter(services.config.NOTIFICATION_RATE_LIMIT);
  const limit = (sourceId: string): number | null => {
    try {
      limiter.take(sourceId);
      return null;
    } catch (err) {
      if (err instanceof RateLimited) return err.retryAfterSeconds;
      throw err;
    }
  };
  // Storms repeat the same subscription id: a short-lived cache keeps them off the store. A
  // subscription removed meanwhile can at most cost one sync that finds its source gone.
  const cache = new Map<string, { at: number; sub: Promise<NotificationSubscription | null> }>();
  const lookup = (kind: string, externalId: string) => {
    const key = `${kind}:${externalId}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < LOOKUP_CACHE_MS) return hit.sub;
    if (cache.size >= LOOKUP_CACHE_SIZE) cache.clear();
    const sub = services.metadata.notifications.subscriptionByExternalId(kind, externalId);
    cache.set(key, { at: Date.now(), sub });
    sub.catch(() => cache.delete(key));
    return sub;
  };
  const now = () => services.now();

  let secrets: { at: number; list: ConfluenceCandidate[] } | null = null;
  const candidates = async (sourceId: string | undefined): Promise<ConfluenceCandidate[]> => {
    if (!secrets || Date.now() - secrets.at > SECRET_CACHE_MS) {
      const list: ConfluenceCandidate[] = [];
      for (const source of await services.metadata.sources.list()) {
        if (source.type !== 'confluence' || source.status !== 'active' || source.enabled === false) continue;
        const creds = await sourceCredentials(services, source.id).catch(() => null);
        if (typeof creds?.webhookSecret === 'string') list.push({ source, secret: creds.webhookSecret });
      }
      secrets = { at: Date.now(), list };
    }
    return sourceId ? secrets.list.filter((c) => c.source.id === sourceId) : secrets.list;
  };

  const reply = (c: Context, a: Reply): Response => {
    if ('text' in a) return c.text(a.text, 200, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    if ('detail' in a) {
      const res = problemResponse(c, new AppError(a.status, a.status === 429 ? 'Too Many Requests' : a.status === 403 ? 'Forbidden' : 'Bad Request', a.detail));
      if (a.retryAfterSeconds !== undefined) res.headers.set('retry-after', String(a.retryAfterSeconds));
      return res;
    }
    return a.json === undefined ? c.body(null, a.status) : c.json(a.json, a.status);
  };

  r.use('*', bodyLimit({
    maxSize: services.config.MAX_BODY_BYTES,
    onError: (c) => problemResponse(c, new AppError(413, 'Payload Too Large', `the body exceeds ${services.config.MAX_BODY_BYTES} bytes`)),
  }));

  r.post('/sharepoint', async (c) => {
    const validationToken = c.req.query('validationToken');
    let body: unknown = null;
    if (validationToken === undefined) {
      try {
        body = await c.req.json();
      } catch {
        throw badRequest('the body is not valid JSON');
      }
    }
    return reply(c, await receiveGraph({ intake, lookup, manager, now, limit }, { validationToken, body }));
  });

  r.post('/google_drive', async (c) => reply(c, await receiveDrive({ intake, lookup, now, limit }, (name) => c.req.header(name))));

  r.post('/confluence', async (c) => {
    const sourceId = c.req.query('source');
    const body = await c.req.text();
    return reply(c, await receiveConfluence({ intake, candidates, now, limit }, { sourceId, body, headers: (name) => c.req.header(name) }));
  });

  return r;
}

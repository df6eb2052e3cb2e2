import type { Context } from 'hono';
import type pino from 'pino';
import type { RequestContext } from '../context.ts';
import { AppError, badRequest } from '../errors.ts';
import type { Caller } from '../types.ts';
import type { AuditNote } from './audit-trail.ts';

/**
 * What every route module needs from the app, in a leaf module so that routes never import the
 * app that mounts them.
 */
export type AppEnv = { Variables: { requestId: string; ctx: RequestContext; log: pino.Logger; audit?: AuditNote } };

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Caller>;
}

/** True when a string anywhere in the value (keys included) holds a NUL, which no store accepts as text. */
export function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 64 || value === null || typeof value !== 'object') return false;
  for (const [k, v] of Object.entries(value)) if (k.includes('\u0000') || hasNul(v, depth + 1)) return true;
  return false;
}

/**
 * Reads a JSON body; malformed JSON is a 400 problem, never a 500. Text with NUL characters is
 * refused here, once for every route, rather than failing in whichever store it reaches.
 */
export async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) throw new AppError(415, 'Unsupported Media Type', 'send the body as application/json');
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw badRequest('the body is not valid JSON');
  }
  if (hasNul(body)) throw badRequest('text may not contain NUL characters');
  return body;
}

/** A JSON body, or `{}` when the request has none (actions whose body is optional). */
export async function optionalJsonBody(c: Context): Promise<unknown> {
  if (c.req.header('content-length') === '0' || !c.req.header('content-type')) return {};
  return (await jsonBody(c)) ?? {};
}

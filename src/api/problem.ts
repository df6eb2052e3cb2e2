import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { AppError } from '../errors.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
}

/** Every error leaves the API as application/problem+json; internals are logged, never returned. */
export function problemResponse(c: Context, err: unknown): Response {
  let problem: Problem;
  if (err instanceof AppError) {
    problem = { type: err.type, title: err.title, status: err.status, detail: err.message };
  } else if (err instanceof ZodError) {
    const first = err.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    problem = { type: 'https://clearance.dev/problems/bad-request', title: 'Bad Request', status: 400, detail: `${where}${first?.message ?? 'invalid request'}` };
  } else if (err instanceof HTTPException) {
    problem = { type: `https://clearance.dev/problems/http-${err.status}`, title: statusTitle(err.status), status: err.status, detail: err.message || statusTitle(err.status) };
  } else {
    const log = c.get('log' as never) as { error: (o: unknown, m: string) => void } | undefined;
    log?.error({ err }, 'unhandled error');
    problem = { type: 'https://clearance.dev/problems/internal', title: 'Internal Server Error', status: 500, detail: 'An unexpected error occurred; it has been logged' };
  }
  const requestId = c.get('requestId' as never) as string | undefined;
  if (requestId) problem.instance = `urn:request:${requestId}`;
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer';
  const retryAfter = (err as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  if (err instanceof AppError && typeof retryAfter === 'number' && Number.isFinite(retryAfter)) headers['retry-after'] = String(Math.ceil(retryAfter));
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}

function statusTitle(status: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests' } as Record<number, string>)[status] ?? 'Error';
}

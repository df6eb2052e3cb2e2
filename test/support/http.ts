import type { Hono } from 'hono';

export interface RequestInit {
  method?: string;
  token?: string;
  /** An object is sent as JSON; a string is sent as-is (for malformed-body tests). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** `app.request()` with a bearer token and a JSON body, the way every API test calls it. */
export function requester(app: () => Pick<Hono<any>, 'request'>) {
  return (p: string, init: RequestInit = {}) =>
    app().request(p, {
      method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    });
}

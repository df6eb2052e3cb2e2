import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';

/**
 * The web console: a static page and a few plain ES modules (src/api/console/) that talk to the
 * same JSON API with the token the person pastes in (kept in sessionStorage only). No build step
 * and no framework: the files are served as they are, read once at start.
 */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'admin.js': 'text/javascript; charset=utf-8',
  'review.js': 'text/javascript; charset=utf-8',
};

const assets = new Map(Object.entries(FILES).map(([name, type]) => {
  const body = readFileSync(new URL(`./console/${name}`, import.meta.url), 'utf8');
  return [name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` }];
}));

/** Scripts and styles only from this origin, no inline code, no framing: API data can never run as code. */
const HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};


export function consoleRoutes() {
  const r = new Hono();
  const serve = (name: string) => (c: import('hono').Context) => {
    const file = assets.get(name);
    if (!file) return c.notFound();
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, { etag: file.etag, ...HEADERS });
    return c.body(file.body, 200, { 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache', ...HEADERS });
  };
  r.get('/', serve('index.html'));
  r.get('/console/:file', (c) => serve(c.req.param('file'))(c));
  return r;
}

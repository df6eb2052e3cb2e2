import { describe, expect, it } from 'vitest';
import { consoleRoutes } from '../src/api/console.ts';

describe('console assets', () => {
  const app = consoleRoutes();

  it('serves the page and its modules with a strict Content-Security-Policy', async () => {
    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    // No inline script or style: everything comes from the served files.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style="/);
    for (const file of ['app.js', 'admin.js', 'review.js']) {
      const res = await app.request(`/console/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
      const js = await res.text();
      // Text from the API is never parsed as markup.
      expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
    expect((await app.request('/console/app.css')).headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('serves nothing else, and answers a revalidation with 304', async () => {
    expect((await app.request('/console/console.ts')).status).toBe(404);
    expect((await app.request('/console/..%2Fconsole.ts')).status).toBe(404);
    const first = await app.request('/console/app.js');
    const again = await app.request('/console/app.js', { headers: { 'if-none-match': first.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });
});

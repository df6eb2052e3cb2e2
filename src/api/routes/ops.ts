import { Hono } from 'hono';
import type { Services } from '../../context.ts';
import { errorMessage } from '../../errors.ts';
import { registry } from '../../metrics.ts';
import { consoleRoutes } from '../console.ts';
import { openApiDocument } from '../openapi.ts';

export function opsRoutes(services: Services) {
  const r = new Hono();
  r.get('/healthz', (c) => c.json({ status: 'ok' }));
  r.get('/readyz', async (c) => {
    const checks: Record<string, string> = {};
    const probe = async (name: string, fn: () => Promise<void>) => {
      try {
        await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timed out')), 3000))]);
        checks[name] = 'ok';
      } catch (err) {
        checks[name] = errorMessage(err);
      }
    };
    await Promise.all([
      probe('metadata', () => services.metadata.ping()),
      probe('vectors', () => services.vectors.ping()),
      probe('queue', () => services.jobs.ping()),
    ]);
    const ok = Object.values(checks).every((v) => v === 'ok');
    return c.json({ status: ok ? 'ready' : 'not ready', checks }, ok ? 200 : 503);
  });
  // Unauthenticated: a client reads it before it holds any token.
  r.get('/openapi.json', (c) => c.json(openApiDocument()));
  r.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  r.route('/', consoleRoutes());
  return r;
}

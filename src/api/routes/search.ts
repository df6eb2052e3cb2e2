import { Hono } from 'hono';
import { runSearch, searchBodySchema } from '../assistant.ts';
import { jsonBody, type AppEnv } from '../env.ts';

/** What assistants call with the end user's token. */
export function searchRoutes() {
  const r = new Hono<AppEnv>();
  r.post('/search', async (c) => {
    const body = searchBodySchema.parse(await jsonBody(c));
    const results = await runSearch(c.get('ctx'), body, c.req.header('x-agent-key'));
    return c.json({ results });
  });
  return r;
}

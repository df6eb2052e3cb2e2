import { Hono } from 'hono';
import { z } from 'zod';
import type { RequestContext } from '../../context.ts';
import { forbidden } from '../../errors.ts';
import { metrics } from '../../metrics.ts';
import { search, type SearchInput } from '../../retrieval/search.ts';
import { jsonBody, type AppEnv } from '../app.ts';
import { handleMcp } from '../mcp.ts';
import { hashAgentKey } from './admin.ts';

export const searchBodySchema = z.object({
  query: z.string().trim().min(1).max(4000),
  topK: z.number().int().min(1).max(100).default(10),
  filter: z.object({
    sourceIds: z.array(z.string()).max(1000).optional(),
    modifiedAfter: z.iso.datetime({ offset: true }).optional(),
    freshOnly: z.boolean().optional(),
  }).strict().optional(),
}).strict();

/** Resolves X-Agent-Key; an unknown key is refused rather than silently ignored. */
export async function resolveAgent(ctx: RequestContext, key: string | undefined): Promise<SearchInput['agent']> {
  if (key === undefined) return undefined;
  const agent = await ctx.metadata.getAgentByKeyHash(hashAgentKey(key.trim()));
  if (!agent) throw forbidden('unknown agent key');
  return { id: agent.id, name: agent.name, sourceIds: agent.sourceIds };
}

export async function runSearch(ctx: RequestContext, body: z.infer<typeof searchBodySchema>, agentKey: string | undefined) {
  const agent = await resolveAgent(ctx, agentKey);
  const results = await search({
    ctx,
    input: {
      query: body.query,
      topK: body.topK,
      agent,
      filter: body.filter && {
        sourceIds: body.filter.sourceIds,
        modifiedAfter: body.filter.modifiedAfter ? new Date(body.filter.modifiedAfter) : undefined,
        freshOnly: body.filter.freshOnly,
      },
    },
  });
  metrics.searchResults.observe(results.length);
  return results;
}

export function searchRoutes() {
  const r = new Hono<AppEnv>();
  r.post('/v1/search', async (c) => {
    const body = searchBodySchema.parse(await jsonBody(c));
    const results = await runSearch(c.get('ctx'), body, c.req.header('x-agent-key'));
    return c.json({ results });
  });
  r.all('/mcp', (c) => handleMcp(c));
  return r;
}

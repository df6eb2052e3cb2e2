import { z } from 'zod';
import type { RequestContext } from '../context.ts';
import { forbidden } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { metrics } from '../metrics.ts';
import { SEARCH_MODES } from '../retrieval/fusion.ts';
import { search, type SearchInput } from '../retrieval/search.ts';

/** What assistants send to search, over HTTP and MCP alike. */
export const searchBodySchema = z.object({
  query: z.string().trim().min(1).max(4000),
  topK: z.number().int().min(1).max(100).default(10),
  mode: z.enum(SEARCH_MODES).default('hybrid'),
  filter: z.object({
    sourceIds: z.array(z.string()).max(1000).optional(),
    modifiedAfter: z.iso.datetime({ offset: true }).optional(),
    freshOnly: z.boolean().optional(),
  }).strict().optional(),
}).strict();

export type SearchBody = z.infer<typeof searchBodySchema>;

/** Agent keys are stored as their sha256 only. */
export const hashAgentKey = (key: string) => sha256(key);

/** Resolves X-Agent-Key; an unknown key is refused rather than silently ignored. */
export async function resolveAgent(ctx: RequestContext, key: string | undefined): Promise<SearchInput['agent']> {
  if (key === undefined) return undefined;
  const agent = await ctx.metadata.agents.byKeyHash(hashAgentKey(key.trim()));
  if (!agent) throw forbidden('unknown agent key');
  return { id: agent.id, name: agent.name, sourceIds: agent.sourceIds };
}

export async function runSearch(ctx: RequestContext, body: SearchBody, agentKey: string | undefined) {
  const agent = await resolveAgent(ctx, agentKey);
  const results = await search({
    ctx,
    input: {
      query: body.query,
      topK: body.topK,
      mode: body.mode,
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

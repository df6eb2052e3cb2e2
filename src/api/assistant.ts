import { z } from 'zod';
import type { RequestContext } from '../context.ts';
import { forbidden } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { metrics } from '../metrics.ts';
import { SEARCH_MODES } from '../retrieval/fusion.ts';
import { search, type SearchInput } from '../retrieval/search.ts';
import { ATTR, activeSpan } from '../telemetry/tracing.ts';

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

/**
 * Resolves X-Agent-Key; an unknown, revoked or expired key, or one asked for sources it does not
 * cover, is refused rather than silently ignored, and the refusal is audited (one record).
 */
export async function resolveAgent(ctx: RequestContext, key: string | undefined, attempt: { action: string; query?: string | null; target?: string | null; requestedSourceIds?: string[] }): Promise<SearchInput['agent']> {
  if (key === undefined) return undefined;
  const agent = await ctx.metadata.agents.byKeyHash(hashAgentKey(key.trim()));
  const now = ctx.now();
  const refusal = !agent ? 'unknown agent key'
    : agent.revokedAt ? 'agent key revoked'
      : agent.expiresAt && agent.expiresAt.getTime() <= now.getTime() ? 'agent key expired'
        : attempt.requestedSourceIds?.some((id) => !agent.sourceIds.includes(id)) ? 'agent key does not cover the requested sources'
          : null;
  if (refusal) {
    await ctx.metadata.audit.append({
      user: ctx.caller.email, agent: agent?.name ?? null, action: attempt.action, target: attempt.target ?? null, outcome: 'denied',
      query: attempt.query ?? null, documentIds: [], details: { reason: refusal, ...(agent ? { agentId: agent.id } : {}), ...(attempt.requestedSourceIds ? { requestedSourceIds: attempt.requestedSourceIds } : {}) },
      requestId: ctx.requestId,
    });
    throw forbidden(refusal);
  }
  // On the request's span, so a trace shows which agent acted for the user (the search span repeats it).
  activeSpan().setAttributes({ [ATTR.agentId]: agent!.id, [ATTR.agentName]: agent!.name });
  return { id: agent!.id, name: agent!.name, sourceIds: agent!.sourceIds };
}

export async function runSearch(ctx: RequestContext, body: SearchBody, agentKey: string | undefined, auditAction = 'search') {
  const agent = await resolveAgent(ctx, agentKey, { action: auditAction, query: body.query, requestedSourceIds: body.filter?.sourceIds });
  const results = await search({
    ctx,
    input: {
      query: body.query,
      topK: body.topK,
      mode: body.mode,
      agent,
      auditAction,
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

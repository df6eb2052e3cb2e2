import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import type { RequestContext } from '../../context.ts';
import { notFound } from '../../errors.ts';
import { createSource, createSourceSchema, deleteSource, freshnessPolicySchema, patchSourceSchema, publicSource, updateSource } from '../../sources/service.ts';
import { previewPolicy } from '../../freshness/preview.ts';
import { sourceDiagnostics } from '../../sources/diagnostics.ts';
import { notificationStatus } from '../../notifications/status.ts';
import type { FreshnessPolicy, Run } from '../../types.ts';
import { hashAgentKey } from '../assistant.ts';
import { jsonBody, optionalJsonBody, type AppEnv } from '../env.ts';

const uuid = z.uuid();
const syncSchema = z.object({ mode: z.enum(['incremental', 'full']).optional() }).strict();
const auditQuery = z.object({
  user: z.string().optional(),
  agent: z.string().optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const agentSchema = z.object({ name: z.string().trim().min(1).max(200), sourceIds: z.array(z.uuid()).max(1000) }).strict();

export function publicRun(r: Run) {
  const { warnings, ...rest } = r;
  return { runId: r.id, ...rest, warnings };
}

/** Ids that are not UUIDs are simply "not found". */
async function sourceOr404(ctx: RequestContext, id: string) {
  const s = uuid.safeParse(id).success ? await ctx.metadata.sources.get(id) : null;
  if (!s) throw notFound('Source');
  return s;
}

/** Sources, runs and agent keys (admin: the role is enforced by the app's route guard). */
export function adminRoutes() {
  const r = new Hono<AppEnv>();

  r.post('/sources', async (c) => {
    const input = createSourceSchema.parse(await jsonBody(c));
    const source = await createSource({ ctx: c.get('ctx'), input });
    return c.json(publicSource(source), 201);
  });
  r.get('/sources', async (c) => {
    const sources = await c.get('ctx').metadata.sources.list();
    return c.json({ sources: sources.map(publicSource) });
  });
  r.get('/sources/:id', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    // `diagnostics`: the last successful run's warnings (null before the first one).
    // `notifications`: change notifications for this source (counts, subscriptions, latency).
    return c.json({ ...publicSource(source), diagnostics: await sourceDiagnostics(ctx, source.id), notifications: await notificationStatus(ctx, source) });
  });
  r.patch('/sources/:id', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    const patch = patchSourceSchema.parse(await jsonBody(c));
    return c.json(publicSource(await updateSource({ ctx, input: { id: source.id, patch } })));
  });
  r.delete('/sources/:id', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    await deleteSource({ ctx, input: { id: source.id } });
    return c.body(null, 204);
  });
  // What a freshness policy would decide for the source's documents, before it is saved (console rules editor).
  r.post('/sources/:id/freshness/preview', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    const policy = freshnessPolicySchema.parse(await jsonBody(c)) as FreshnessPolicy;
    return c.json(await previewPolicy({ ctx, input: { sourceId: source.id, policy } }));
  });
  r.post('/sources/:id/sync', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    const { mode } = syncSchema.parse(await optionalJsonBody(c));
    const { runId, deduplicated } = await ctx.jobs.enqueueSync(source.id, mode);
    return c.json({ runId, deduplicated }, 202);
  });
  r.get('/sources/:id/runs', async (c) => {
    const ctx = c.get('ctx');
    const source = await sourceOr404(ctx, c.req.param('id'));
    return c.json({ runs: (await ctx.metadata.runs.list(source.id, 50)).map(publicRun) });
  });
  r.get('/runs/:runId', async (c) => {
    const id = c.req.param('runId');
    const run = uuid.safeParse(id).success ? await c.get('ctx').metadata.runs.get(id) : null;
    if (!run) throw notFound('Run');
    return c.json(publicRun(run));
  });
  r.post('/agents', async (c) => {
    const input = agentSchema.parse(await jsonBody(c));
    // The key is shown once; only its hash is stored.
    const key = `clr_${randomBytes(24).toString('base64url')}`;
    const agent = await c.get('ctx').metadata.agents.create(input.name, hashAgentKey(key), input.sourceIds);
    return c.json({ ...agent, key }, 201);
  });
  r.get('/agents', async (c) => c.json({ agents: await c.get('ctx').metadata.agents.list() }));
  return r;
}

/** The audit trail (compliance reviewers and admins). */
export function auditRoutes() {
  const r = new Hono<AppEnv>();
  r.get('/audit', async (c) => {
    const q = auditQuery.parse(c.req.query());
    const records = await c.get('ctx').metadata.audit.search({
      user: q.user?.toLowerCase(), agent: q.agent, limit: q.limit,
      from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined,
    });
    return c.json({ records });
  });
  return r;
}

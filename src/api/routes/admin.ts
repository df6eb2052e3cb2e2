import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import type { RequestContext } from '../../context.ts';
import { conflict, notFound } from '../../errors.ts';
import { createSource, createSourceSchema, deleteSource, freshnessPolicySchema, patchSourceSchema, publicSource, updateSource } from '../../sources/service.ts';
import { previewPolicy } from '../../freshness/preview.ts';
import { sourceDiagnostics } from '../../sources/diagnostics.ts';
import type { Agent } from '../../metadata/interface.ts';
import { notificationStatus } from '../../notifications/status.ts';
import type { FreshnessPolicy, Run } from '../../types.ts';
import { hashAgentKey } from '../assistant.ts';
import { jsonBody, optionalJsonBody, type AppEnv } from '../env.ts';

const uuid = z.uuid();
export const syncSchema = z.object({ mode: z.enum(['incremental', 'full']).optional() }).strict();
export const agentSchema = z.object({
  name: z.string().trim().min(1).max(200),
  sourceIds: z.array(z.uuid()).max(1000),
  expiresAt: z.iso.datetime({ offset: true }).nullable().optional(),
}).strict();
export const agentPatchSchema = z.object({ expiresAt: z.iso.datetime({ offset: true }).nullable() }).strict();

export function publicAgent(a: Agent, now: Date) {
  const status = a.revokedAt ? 'revoked' : a.expiresAt && a.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  return { id: a.id, name: a.name, sourceIds: a.sourceIds, createdAt: a.createdAt, expiresAt: a.expiresAt, revokedAt: a.revokedAt, status };
}

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
    if (patch.enabled !== undefined && patch.enabled !== source.enabled) c.set('audit', { action: patch.enabled ? 'source.enable' : 'source.disable', details: { fields: Object.keys(patch) } });
    else c.set('audit', { details: { fields: Object.keys(patch) } });
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
    if (!source.enabled) throw conflict('the source is disabled; enable it before syncing');
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
    const ctx = c.get('ctx');
    const agent = await ctx.metadata.agents.create(input.name, hashAgentKey(key), input.sourceIds, input.expiresAt ? new Date(input.expiresAt) : null);
    c.set('audit', { target: agent.id, details: { name: agent.name, sourceIds: agent.sourceIds, expiresAt: input.expiresAt ?? null } });
    return c.json({ ...publicAgent(agent, ctx.now()), key }, 201);
  });
  r.get('/agents', async (c) => {
    const ctx = c.get('ctx');
    return c.json({ agents: (await ctx.metadata.agents.list()).map((a) => publicAgent(a, ctx.now())) });
  });
  r.get('/agents/:id', async (c) => {
    const ctx = c.get('ctx');
    const id = c.req.param('id');
    const agent = uuid.safeParse(id).success ? await ctx.metadata.agents.get(id) : null;
    if (!agent) throw notFound('Agent');
    return c.json(publicAgent(agent, ctx.now()));
  });
  // An expiry (or none); a revoked key stays revoked.
  r.patch('/agents/:id', async (c) => {
    const ctx = c.get('ctx');
    const id = c.req.param('id');
    const { expiresAt } = agentPatchSchema.parse(await jsonBody(c));
    c.set('audit', { details: { expiresAt } });
    const agent = uuid.safeParse(id).success ? await ctx.metadata.agents.setExpiry(id, expiresAt ? new Date(expiresAt) : null) : null;
    if (!agent) throw notFound('Agent');
    return c.json(publicAgent(agent, ctx.now()));
  });
  // Revokes at once: the key's next use is refused (and audited as a revoked key).
  r.delete('/agents/:id', async (c) => {
    const ctx = c.get('ctx');
    const id = c.req.param('id');
    const agent = uuid.safeParse(id).success ? await ctx.metadata.agents.get(id) : null;
    if (!agent) throw notFound('Agent');
    await ctx.metadata.agents.delete(id);
    c.set('audit', { details: { name: agent.name } });
    return c.body(null, 204);
  });
  return r;
}

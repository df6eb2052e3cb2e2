import { z } from 'zod';
import { connectorFor } from '../connectors/index.ts';
import type { RequestContext, Services } from '../context.ts';
import { badRequest, conflict, errorMessage, notFound, unprocessable } from '../errors.ts';
import { triggerEvaluation } from '../freshness/evaluate.ts';
import { encryptJson } from '../metadata/secrets.ts';
import { subscriptionManager } from '../notifications/lifecycle.ts';
import { sourceCredentials } from './connector.ts';
import { checkFilesystemPath } from './filesystem-roots.ts';
import type { FreshnessPolicy, Source } from '../types.ts';

const freshnessRule = z.object({
  match: z.object({
    pathGlob: z.string().min(1).optional(),
    titleRegex: z.string().min(1).refine((r) => { try { new RegExp(r); return true; } catch { return false; } }, 'invalid regular expression').optional(),
    label: z.string().min(1).optional(),
    mimeType: z.string().min(1).optional(),
  }).strict(),
  maxAgeDays: z.number().int().min(0).nullable(),
}).strict();

export const freshnessPolicySchema = z.object({
  maxAgeDays: z.number().int().min(0).nullable(),
  rules: z.array(freshnessRule).max(100).optional(),
  /** Alert notifications (Slack-compatible JSON); http(s) only. */
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
}).passthrough();

const scheduleSchema = z.object({ intervalSeconds: z.number().int().min(60).max(30 * 86400) }).strict();

export const createSourceSchema = z.object({
  name: z.string().trim().min(1).max(200),
  type: z.string(),
  config: z.record(z.string(), z.unknown()),
  credentials: z.record(z.string(), z.unknown()).optional(),
  schedule: scheduleSchema.nullable().optional(),
  freshness: freshnessPolicySchema.nullable().optional(),
}).strict();

export const patchSourceSchema = z.object({
  name: z.string().trim().min(1).max(200).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  credentials: z.record(z.string(), z.unknown()).optional(),
  schedule: scheduleSchema.nullable().optional(),
  freshness: freshnessPolicySchema.nullable().optional(),
  status: z.enum(['active', 'paused']).optional(),
  /** Kill switch: false hides every document of the source from search at once and stops its syncs. */
  enabled: z.boolean().optional(),
}).strict();

/** The public shape: credentials never leave the service, and a webhook URL (a bearer secret for Slack) is masked. */
export function publicSource(s: Source) {
  return { id: s.id, name: s.name, type: s.type, config: s.config, schedule: s.schedule, freshness: maskWebhook(s.freshness), status: s.status, enabled: s.enabled, createdAt: s.createdAt, updatedAt: s.updatedAt };
}

/** A policy read from GET and sent back unchanged carries the masked URL: keep the stored one. */
function keepMaskedWebhook(next: FreshnessPolicy | null, current: FreshnessPolicy | null): FreshnessPolicy | null {
  const url = (next as { webhookUrl?: string } | null)?.webhookUrl;
  if (!next || !url?.endsWith('/***')) return next;
  return { ...next, webhookUrl: (current as { webhookUrl?: string } | null)?.webhookUrl } as FreshnessPolicy;
}

function maskWebhook(policy: Source['freshness']) {
  const url = (policy as { webhookUrl?: string } | null)?.webhookUrl;
  if (!policy || !url) return policy;
  let shown = '***';
  try { shown = `${new URL(url).origin}/***`; } catch { /* keep *** */ }
  return { ...policy, webhookUrl: shown };
}

function validated(type: string, config: unknown, credentials: unknown) {
  const reg = connectorFor(type);
  if (!reg) throw badRequest(`type: unsupported source type "${type}"`);
  const cfg = reg.configSchema.safeParse(config);
  if (!cfg.success) throw badRequest(`config: ${cfg.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  let creds: Record<string, unknown> | null = null;
  if (reg.credentialsSchema) {
    const parsed = reg.credentialsSchema.safeParse(credentials);
    // Zod echoes offending values in some messages; name only the paths so secrets never reach a response.
    if (!parsed.success) throw badRequest(`credentials: invalid or missing ${parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ')}`);
    creds = parsed.data;
  }
  return { reg, config: cfg.data, credentials: creds };
}

async function testConnection(ctx: Services, sourceId: string, type: string, reg: NonNullable<ReturnType<typeof connectorFor>>, config: Record<string, unknown>, credentials: Record<string, unknown> | null) {
  // Where a filesystem source may point is decided before anything is read there.
  if (type === 'filesystem') await checkFilesystemPath(String(config.path ?? ''), ctx.config);
  try {
    await reg.factory({ sourceId, config, credentials }).test();
  } catch (err) {
    throw unprocessable(`connection test failed: ${errorMessage(err)}`);
  }
}

export async function createSource({ ctx, input }: { ctx: RequestContext | Services; input: z.infer<typeof createSourceSchema> }) {
  const { reg, config, credentials } = validated(input.type, input.config, input.credentials);
  if ((await ctx.metadata.sources.list()).some((s) => s.name === input.name)) throw conflict(`a source named "${input.name}" already exists`);
  await testConnection(ctx, 'pending', input.type, reg, config, credentials);
  const source = await ctx.metadata.sources.create({
    name: input.name,
    type: input.type as Source['type'],
    config,
    credentialsEncrypted: credentials ? encryptJson(ctx.secretKey, credentials) : null,
    schedule: input.schedule ?? null,
    freshness: (input.freshness as FreshnessPolicy | undefined) ?? null,
  });
  await ctx.jobs.setSchedule(source.id, source.schedule?.intervalSeconds ?? null);
  // Change notifications: Graph subscriptions / Drive channels (never fails the creation).
  await subscriptionManager(ctx).ensure(source);
  return source;
}

export async function updateSource({ ctx, input }: { ctx: RequestContext; input: { id: string; patch: z.infer<typeof patchSourceSchema> } }) {
  const existing = await ctx.metadata.sources.get(input.id);
  if (!existing) throw notFound('Source');
  const { patch } = input;
  let credentialsEncrypted: string | undefined;
  if (patch.config || patch.credentials) {
    const config = patch.config ?? existing.config;
    const { reg, config: cfg, credentials } = validated(existing.type, config, patch.credentials ?? (await sourceCredentials(ctx, existing.id)) ?? undefined);
    await testConnection(ctx, existing.id, existing.type, reg, cfg, credentials);
    patch.config = cfg;
    if (patch.credentials && credentials) credentialsEncrypted = encryptJson(ctx.secretKey, credentials);
  }
  const updated = await ctx.metadata.sources.update(existing.id, {
    name: patch.name,
    config: patch.config,
    credentialsEncrypted,
    schedule: patch.schedule === undefined ? undefined : patch.schedule,
    freshness: patch.freshness === undefined ? undefined : keepMaskedWebhook(patch.freshness as FreshnessPolicy | null, existing.freshness),
    status: patch.status,
    enabled: patch.enabled,
  });
  if (!updated) throw notFound('Source');
  if (patch.schedule !== undefined || patch.status || patch.enabled !== undefined) {
    await ctx.jobs.setSchedule(updated.id, updated.status === 'active' && updated.enabled ? updated.schedule?.intervalSeconds ?? null : null);
  }
  // Disabling or pausing a source deletes its subscriptions upstream; enabling it subscribes again.
  if (patch.status || patch.enabled !== undefined || patch.config || patch.credentials) await subscriptionManager(ctx).ensure(updated);
  // A new policy applies to what is already indexed: re-evaluate now, without a re-sync.
  if (patch.freshness !== undefined) void triggerEvaluation(ctx, updated.id);
  return updated;
}

/** Removes the source's vectors first: a half-finished delete must never leave searchable chunks. */
export async function deleteSource({ ctx, input }: { ctx: RequestContext | Services; input: { id: string } }) {
  const existing = await ctx.metadata.sources.get(input.id);
  if (!existing) throw notFound('Source');
  await ctx.jobs.setSchedule(existing.id, null);
  await ctx.metadata.sources.update(existing.id, { status: 'deleting' });
  await subscriptionManager(ctx).removeAll(existing);
  await ctx.vectors.deleteSource(existing.id);
  await ctx.metadata.sources.delete(existing.id);
}

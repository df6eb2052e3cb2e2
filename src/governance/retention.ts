import type { Services } from '../context.ts';
import type { JobRunner } from '../jobs/interface.ts';

export const AUDIT_RETENTION_EVERY_MS = 6 * 60 * 60_000;

/**
 * Deletes audit records older than AUDIT_RETENTION_DAYS (0 keeps everything). The store removes
 * them from the tail of the chain and moves its anchor, so what remains still verifies.
 */
export async function pruneAudit(ctx: Pick<Services, 'config' | 'metadata' | 'now' | 'log'>): Promise<number> {
  const days = ctx.config.AUDIT_RETENTION_DAYS;
  if (!days) return 0;
  const deleted = await ctx.metadata.audit.prune(new Date(ctx.now().getTime() - days * 86_400_000));
  if (deleted > 0) ctx.log.info({ deleted, retentionDays: days }, 'audit records past retention pruned');
  return deleted;
}

export async function registerAuditRetention(jobs: JobRunner, ctx: Services): Promise<void> {
  await jobs.registerRepeatable('audit-retention', AUDIT_RETENTION_EVERY_MS, async () => {
    await pruneAudit(ctx);
  });
}

import type { Services } from '../context.ts';

/**
 * What the source's last completed sync reported that an admin should act on — for instance that
 * SharePoint groups cannot be expanded with a client secret, and how many documents that affects.
 * Connectors state such source-wide findings in every run's warnings, so the latest succeeded run
 * is the current picture; a failed run's warnings are partial and are not used.
 */
export interface SourceDiagnostics {
  runId: string;
  finishedAt: Date | null;
  warnings: string[];
}

export async function sourceDiagnostics(ctx: Pick<Services, 'metadata'>, sourceId: string): Promise<SourceDiagnostics | null> {
  const last = (await ctx.metadata.runs.list(sourceId, 50)).find((r) => r.status === 'succeeded');
  return last ? { runId: last.id, finishedAt: last.finishedAt, warnings: last.warnings } : null;
}

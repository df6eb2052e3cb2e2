import { connectorFor } from '../connectors/index.ts';
import type { Connector } from '../connectors/interface.ts';
import type { Services } from '../context.ts';
import { CursorExpiredError, errorMessage } from '../errors.ts';
import { afterSync } from '../freshness/evaluate.ts';
import { sourceCredentials } from '../sources/credentials.ts';
import { emptyStats, type RunMode, type RunStats, type Source } from '../types.ts';
import { applyPage, pushWarning } from './apply.ts';

export interface SyncInput {
  sourceId: string;
  runId: string;
  /** undefined → incremental when a cursor exists, full otherwise. */
  mode?: RunMode;
  signal?: AbortSignal;
  onProgress?: (p: { stats: RunStats; page: number }) => void;
}

export class SyncAborted extends Error {
  constructor() {
    super('sync stopped by shutdown; it resumes from the last committed page');
    this.name = 'SyncAborted';
  }
}

export async function buildConnector(ctx: Services, source: Source): Promise<Connector> {
  const reg = connectorFor(source.type);
  if (!reg) throw new Error(`source type ${source.type} is not supported by this build`);
  return reg.factory({ sourceId: source.id, config: source.config, credentials: await sourceCredentials(ctx, source.id) });
}

/**
 * One sync run of one source. The caller (job runner) guarantees a single run per source at a time.
 * Pages are applied in order and the connector's cursor is committed only after its page is
 * applied, so a crash at any point replays at most one page, harmlessly. A failure of the source
 * itself fails the run and leaves the index as the last completed page left it.
 */
export async function runSync({ ctx, input }: { ctx: Services; input: SyncInput }): Promise<RunStats> {
  const { runId, sourceId, signal } = input;
  const stats = emptyStats();
  const warnings: string[] = [];
  const source = await ctx.metadata.getSource(sourceId);
  if (!source) throw new Error(`source ${sourceId} no longer exists`);
  let cursor = await ctx.metadata.getCursor(sourceId);
  let full = input.mode === 'full' || cursor === null;
  await ctx.metadata.updateRun(runId, { status: 'running', startedAt: ctx.now(), mode: full ? 'full' : 'incremental', error: null });
  const log = ctx.log.child({ sourceId, runId });
  let page = 0;
  const save = () => ctx.metadata.updateRun(runId, { stats: { ...stats }, warnings: [...warnings] });
  try {
    const connector = await buildConnector(ctx, source);
    for (let attempt = 0; ; attempt++) {
      try {
        for await (const p of connector.changes({ cursor: full ? null : cursor, full })) {
          if (signal?.aborted) throw new SyncAborted();
          for (const w of p.warnings ?? []) pushWarning(warnings, w);
          stats.seen += p.changes.filter((c) => c.kind !== 'delete').length;
          await applyPage({ ctx, input: { source, runId, changes: p.changes, stats, warnings } });
          if (p.cursor !== null) await ctx.metadata.setCursor(sourceId, p.cursor);
          page++;
          await save();
          input.onProgress?.({ stats: { ...stats }, page });
        }
        break;
      } catch (err) {
        if (err instanceof CursorExpiredError && !full && attempt === 0) {
          log.warn('delta cursor expired; running a full enumeration');
          pushWarning(warnings, 'delta cursor expired upstream; ran a full enumeration');
          full = true;
          await ctx.metadata.updateRun(runId, { mode: 'full' });
          continue;
        }
        throw err;
      }
    }
    if (signal?.aborted) throw new SyncAborted();
    if (connector.groups) {
      const groups = [];
      // Memberships are replaced wholesale, so the connector must refresh every group we know of,
      // not only those an incremental run happened to see in ACLs.
      const knownGroupIds = await ctx.metadata.listSourceGroupIds(sourceId);
      for await (const g of connector.groups({ knownGroupIds })) groups.push({ groupId: g.groupId, memberEmails: g.memberEmails.map((e) => e.toLowerCase()) });
      await ctx.metadata.replaceGroups(sourceId, groups);
    }
    if (full || connector.enumeratesEverything) {
      // Anything the enumeration did not see no longer exists upstream.
      for (const doc of await ctx.metadata.listUnseenDocuments(sourceId, runId)) {
        await ctx.vectors.deleteDocument(doc.id);
        await ctx.metadata.deleteDocument(doc.id);
        stats.deleted++;
      }
    }
    await ctx.metadata.updateRun(runId, { status: 'succeeded', finishedAt: ctx.now(), stats, warnings });
    log.info({ stats }, 'sync finished');
    // Alerts are current when the run's job ends, not at the next hourly pass (never throws).
    await afterSync(ctx, sourceId, signal);
    return stats;
  } catch (err) {
    const message = errorMessage(err);
    log.warn({ err: message }, 'sync failed');
    await ctx.metadata.updateRun(runId, { status: 'failed', finishedAt: ctx.now(), error: message, stats, warnings });
    throw err;
  }
}

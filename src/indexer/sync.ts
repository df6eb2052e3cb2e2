import type { Connector } from '../connectors/interface.ts';
import { CursorExpiredError } from '../errors.ts';
import type { RunStats, Source } from '../types.ts';
import { pushWarning } from './apply.ts';
import { applyPages } from './pipeline.ts';
import type { IndexerContext } from './deps.ts';

/** What a sync did: the run's stats and the things a person should look at. */
export interface SyncReport {
  stats: RunStats;
  warnings: string[];
}

export interface SyncInput {
  source: Source;
  runId: string;
  /** undefined → incremental when a cursor exists, full otherwise. */
  mode?: 'incremental' | 'full';
  connector: Connector;
  /** Filled in as the sync goes, so the caller has the figures even when the sync throws. */
  report: SyncReport;
  signal?: AbortSignal;
  onProgress?: (p: { stats: RunStats; page: number }) => void;
}

export class SyncAborted extends Error {
  constructor() {
    super('sync stopped by shutdown; it resumes from the last committed page');
    this.name = 'SyncAborted';
  }
}

/**
 * One sync of one source: pulls the connector's pages of changes and applies them, refreshes the
 * source's group memberships, and prunes what a full enumeration did not see. It records what it
 * did on its run (mode, stats, warnings after every page) and reports it; whether the run
 * succeeded, is retried or failed is the job layer's decision.
 *
 * Pages commit in order and the connector's cursor is committed only after its page is applied,
 * so a crash at any point replays only pages not yet committed (at most the three the pipeline
 * has prepared or embedded ahead), harmlessly. Stages overlap across pages (pipeline.ts). A failure of the source
 * itself throws and leaves the index as the last completed page left it.
 */
export async function runSync({ ctx, input }: { ctx: IndexerContext; input: SyncInput }): Promise<SyncReport> {
  const { runId, source, signal, connector, report } = input;
  const { stats, warnings } = report;
  const sourceId = source.id;
  const cursor = await ctx.metadata.sources.cursor(sourceId);
  let full = input.mode === 'full' || cursor === null;
  await ctx.metadata.runs.update(runId, { mode: full ? 'full' : 'incremental' });
  const log = ctx.log.child({ sourceId, runId });
  let page = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await applyPages(ctx, connector.changes({ cursor: full ? null : cursor, full }), {
        received: (p) => {
          if (signal?.aborted) throw new SyncAborted();
          for (const w of p.warnings ?? []) pushWarning(warnings, w);
          stats.seen += p.changes.filter((c) => c.kind !== 'delete').length;
        },
        checkStop: () => {
          if (signal?.aborted) throw new SyncAborted();
        },
        input: (p) => ({ source, runId, changes: p.changes, stats, warnings }),
        committed: async (p) => {
          if (p.cursor !== null) await ctx.metadata.sources.setCursor(sourceId, p.cursor);
          page++;
          await ctx.metadata.runs.update(runId, { stats: { ...stats }, warnings: [...warnings] });
          input.onProgress?.({ stats: { ...stats }, page });
        },
      });
      break;
    } catch (err) {
      if (err instanceof CursorExpiredError && !full && attempt === 0) {
        log.warn('delta cursor expired; running a full enumeration');
        pushWarning(warnings, 'delta cursor expired upstream; ran a full enumeration');
        full = true;
        await ctx.metadata.runs.update(runId, { mode: 'full' });
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
    const knownGroupIds = await ctx.metadata.groups.ids(sourceId);
    for await (const g of connector.groups({ knownGroupIds })) groups.push({ groupId: g.groupId, memberEmails: g.memberEmails.map((e) => e.toLowerCase()), memberGroupIds: g.memberGroupIds });
    await ctx.metadata.groups.replace(sourceId, groups);
  }
  if (full || connector.enumeratesEverything) {
    // Anything the enumeration did not see no longer exists upstream.
    for (const doc of await ctx.metadata.documents.unseen(sourceId, runId)) {
      await ctx.vectors.deleteDocument(doc.id);
      await ctx.metadata.embeddings.forget(doc.id);
      await ctx.metadata.documents.delete(doc.id);
      stats.deleted++;
    }
  }
  return report;
}

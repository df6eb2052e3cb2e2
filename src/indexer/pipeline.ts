import type { Change, ChangePage } from '../connectors/interface.ts';
import { commitPage, embedPage, preparePage, type PageInput, type PreparedPage } from './apply.ts';
import type { IndexerContext } from './deps.ts';

export interface PipelineHooks {
  /** A page arrived from the connector (abort checks, warnings, counts). May throw to stop. */
  received(page: ChangePage): void;
  input(page: ChangePage): PageInput;
  /** The page is applied; called in page order (commit its cursor here). */
  committed(page: ChangePage): Promise<void>;
}

interface Prepared {
  page: ChangePage;
  prepared: PreparedPage;
  /** Settles when this page's commit is over, whether it succeeded or not. */
  settled: Promise<void>;
  settle: () => void;
}

const externalIdOf = (c: Change) => (c.kind === 'upsert' ? c.doc.externalId : c.externalId);

/**
 * Applies a connector's pages with the stages overlapped, so the embedder, the slowest stage,
 * never waits: while page N is embedded, page N+1 is fetched, extracted and chunked and page N-1
 * is written. At most three pages are in memory, whatever the source's size.
 *
 * What a sync promises is unchanged: pages commit strictly in order, each with its cursor after its
 * writes, so a crash still replays at most the pages not yet committed; preparing and embedding
 * write nothing but the embedding cache. A page's plan reads the registry, so a page that touches
 * a document an earlier, uncommitted page also touches is planned only after that page commits.
 * On any failure, the commit in progress finishes (it is a complete page) and nothing after it is
 * committed.
 */
export async function applyPages(ctx: IndexerContext, pages: AsyncIterable<ChangePage>, hooks: PipelineHooks): Promise<void> {
  const it = pages[Symbol.asyncIterator]();
  const uncommitted: Prepared[] = [];

  const pullAndPrepare = async (): Promise<Prepared | null> => {
    const r = await it.next();
    if (r.done) return null;
    const page = r.value;
    hooks.received(page);
    const ids = new Set(page.changes.map(externalIdOf));
    const clash = uncommitted.findLast((u) => u.prepared.externalIds.some((id) => ids.has(id)));
    if (clash) await clash.settled;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => { settle = resolve; });
    // Registered before planning, so the page after it sees it even while it is still being planned.
    const entry = { page, prepared: undefined as unknown as PreparedPage, settled, settle };
    uncommitted.push(entry);
    try {
      entry.prepared = await preparePage({ ctx, input: hooks.input(page) });
    } catch (err) {
      entry.settle();
      throw err;
    }
    return entry;
  };

  const commit = async (p: Prepared): Promise<void> => {
    try {
      await commitPage(ctx, p.prepared);
      await hooks.committed(p.page);
    } finally {
      uncommitted.splice(uncommitted.indexOf(p), 1);
      p.settle();
    }
  };

  let next = pullAndPrepare();
  let committing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      const cur = await next;
      if (!cur) break;
      next = pullAndPrepare();
      // Awaited on the next turn (or on failure below); until then its rejection is not unhandled.
      next.catch(() => undefined);
      await embedPage(ctx, cur.prepared);
      await committing;
      committing = commit(cur);
      committing.catch(() => undefined);
    }
    await committing;
  } catch (err) {
    await committing.catch(() => undefined);
    await next.catch(() => undefined);
    await it.return?.().catch(() => undefined);
    throw err;
  }
}

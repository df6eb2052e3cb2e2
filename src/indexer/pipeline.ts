import type { Change, ChangePage } from '../connectors/interface.ts';
import { commitPage, preparePage, startEmbedding, type PageEmbedding, type PageInput, type PreparedPage } from './apply.ts';
import type { IndexerContext } from './deps.ts';

export interface PipelineHooks {
  /** A page arrived from the connector (abort checks, warnings, counts). May throw to stop. */
  received(page: ChangePage): void;
  input(page: ChangePage): PageInput;
  /** The page is applied; called in page order (commit its cursor here). */
  committed(page: ChangePage): Promise<void>;
  /**
   * Throws when the sync is asked to stop. Checked before each commit: once it throws, the next
   * page in commit order still commits (the page in flight finishes) and none after it.
   */
  checkStop?(): void;
}

interface Prepared {
  page: ChangePage;
  prepared: PreparedPage;
  /** Set when preparing already started the page's embedding (the first page, in pieces). */
  embedding?: PageEmbedding;
  /** Settles when this page's commit is over, whether it succeeded or not (or it will never commit). */
  settled: Promise<void>;
  settle: () => void;
}

const externalIdOf = (c: Change) => (c.kind === 'upsert' ? c.doc.externalId : c.externalId);

/**
 * The first page is prepared in pieces of this many changes, then twice as many each time (a
 * remainder smaller than the piece before it joins that piece), and each piece is embedded as soon
 * as it is chunked: the model starts on the first few documents instead of waiting for the whole
 * page. Preparing a document took a third to a half of the time the model spends on its chunks on
 * a busy machine, so each piece is ready about when the model is through the previous one. Eight
 * documents of prose are about one batch of chunks: from four, the first batches were formed from
 * too few texts to sort (300 generated documents: 103.9-105.5k padded tokens, against 103.3-103.6k
 * in most runs from eight and 101.9k for the model given every text at once), and the first batch
 * came no earlier (17-43 ms after the sync began, against 20-38 ms from eight).
 */
const FIRST_PIECE = 8;
const PIECE_GROWTH = 2;

/**
 * Applies a connector's pages with the stages overlapped, so the embedder, the slowest stage,
 * never waits: while page N is embedded, page N+1 is fetched, extracted and chunked, and its
 * batches are queued at the embedder as soon as page N's last batch is, so the model goes from one
 * page to the next without a pause; page N-1 is written meanwhile. At most four pages are in
 * memory, whatever the source's size.
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
  const forget = (p: Prepared) => {
    const i = uncommitted.indexOf(p);
    if (i >= 0) uncommitted.splice(i, 1);
    p.settle();
  };

  const pullAndPrepare = async (inPieces: boolean): Promise<Prepared | null> => {
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
    const entry: Prepared = { page, prepared: { input: hooks.input(page), plans: [], externalIds: [...ids] }, settled, settle };
    uncommitted.push(entry);
    try {
      if (inPieces) [entry.prepared, entry.embedding] = await prepareInPieces(ctx, entry.prepared.input);
      else entry.prepared = await preparePage({ ctx, input: entry.prepared.input });
    } catch (err) {
      forget(entry);
      throw err;
    }
    return entry;
  };

  /** Commits the page after its embedding and the previous page's commit; a page that cannot commit is settled too. */
  const commitInTurn = async (p: Prepared, embedding: PageEmbedding, previous: Promise<void>): Promise<void> => {
    try {
      await embedding.done;
      await previous;
      // Pages are read ahead of the commit, so a stop must not wait for (or commit) all of them.
      const stop = stopRequest();
      if (stop) {
        finishing ??= p;
        if (finishing !== p) throw stop;
      }
      await commitPage(ctx, p.prepared);
      await hooks.committed(p.page);
    } finally {
      forget(p);
    }
  };

  let finishing: Prepared | undefined;
  const stopRequest = (): unknown => {
    try {
      hooks.checkStop?.();
      return undefined;
    } catch (err) {
      return err ?? new Error('stopped');
    }
  };

  const commits: Promise<void>[] = [];
  let failed = false;
  let next: Promise<Prepared | null> = pullAndPrepare(true);
  try {
    for (;;) {
      const cur = await next;
      if (!cur) break;
      const embedding = cur.embedding ?? startEmbedding(ctx, cur.prepared);
      const committed = commitInTurn(cur, embedding, commits.at(-1) ?? Promise.resolve());
      // Awaited below (or on failure); until then a rejection is not unhandled.
      committed.catch(() => { failed = true; });
      commits.push(committed);
      // Bounds the pages in memory; once a page failed (it and everything after it stay uncommitted), no more are pulled.
      await commits.at(-3);
      if (failed) await Promise.all(commits);
      next = pullAndPrepare(false);
      next.catch(() => undefined);
      await embedding.queued;
    }
    await commits.at(-1);
  } catch (err) {
    await Promise.allSettled([...commits, next]);
    await it.return?.().catch(() => undefined);
    throw err;
  }
}

/**
 * Prepares a page a piece at a time, starting each piece's embedding as soon as it is planned; the
 * pieces are one page again for the commit. If a piece fails, the embeddings already started are
 * waited for before the error is passed on.
 */
async function prepareInPieces(ctx: IndexerContext, input: PageInput): Promise<[PreparedPage, PageEmbedding]> {
  const pieces: PreparedPage[] = [];
  const embeddings: PageEmbedding[] = [];
  try {
    for (let start = 0, size = FIRST_PIECE; start < input.changes.length || pieces.length === 0; start += size, size *= PIECE_GROWTH) {
      if (input.changes.length - (start + size) < size) size = input.changes.length - start;
      const piece = await preparePage({ ctx, input: { ...input, changes: input.changes.slice(start, start + size) } });
      pieces.push(piece);
      embeddings.push(startEmbedding(ctx, piece));
    }
  } catch (err) {
    await Promise.allSettled(embeddings.map((e) => e.done));
    throw err;
  }
  const done = Promise.all(embeddings.map((e) => e.done)).then(() => undefined);
  done.catch(() => undefined);
  return [
    { input, plans: pieces.flatMap((p) => p.plans), externalIds: pieces.flatMap((p) => p.externalIds) },
    { queued: embeddings.at(-1)!.queued, done },
  ];
}

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Embedder } from '../src/embedder/interface.ts';
import { FakeEmbedder } from './fakes/embedder.ts';
import { createSyncWork } from '../src/jobs/policy.ts';
import { createHarness, syncNow, type Harness } from './support/harness.ts';
import { createScriptedSource, pagesOf } from './support/scripted-connector.ts';

/** What the pipeline asked of the model, in order: chunk counts (while preparing) and embed calls. */
class RecordingEmbedder implements Embedder {
  readonly events: string[] = [];
  private readonly inner = new FakeEmbedder({ dimension: 64, maxTokens: 128 });
  /** Called at the start of every embed call; may hold it or make it fail. */
  onEmbed: (texts: string[]) => Promise<void> | void = () => undefined;
  readonly modelId = this.inner.modelId;
  readonly dimension = this.inner.dimension;
  readonly maxTokens = this.inner.maxTokens;
  batchesAcrossCalls = false;
  /** Embed calls not yet returned, per page (the `pgN` of their texts), and the most there were at once. */
  readonly outstanding = new Map<string, number>();
  readonly maxOutstanding = new Map<string, number>();

  countTokens(text: string): number {
    const item = /(pg\d+ item \d+)/.exec(text);
    if (item) this.events.push(`count ${item[1]}`);
    return this.inner.countTokens(text);
  }

  async embed(texts: string[]): Promise<number[][]> {
    this.events.push(`embed ${texts.length}`);
    const page = /pg\d+/.exec(texts[0] ?? '')?.[0] ?? '';
    const n = (this.outstanding.get(page) ?? 0) + 1;
    this.outstanding.set(page, n);
    this.maxOutstanding.set(page, Math.max(n, this.maxOutstanding.get(page) ?? 0));
    try {
      await this.onEmbed(texts);
      return await this.inner.embed(texts);
    } finally {
      this.outstanding.set(page, this.outstanding.get(page)! - 1);
    }
  }
}

const onPage = (p: number) => (texts: string[]) => texts.every((t) => t.includes(`pg${p} item`));

describe('sync pipeline', () => {
  let h: Harness;
  let embedder: RecordingEmbedder;
  beforeEach(async () => {
    embedder = new RecordingEmbedder();
    h = await createHarness({ embedder, env: { EMBEDDING_BATCH_SIZE: '8' } });
  });
  afterEach(() => h?.cleanup());

  it('embeds the first page while it is still being chunked', async () => {
    const { source } = await createScriptedSource(h.metadata, 'first-page', { pages: pagesOf(1, 40) });
    const run = await syncNow(h, source.id);
    expect(run.status).toBe('succeeded');
    expect(run.stats.chunksEmbedded).toBe(40);
    const firstEmbed = embedder.events.findIndex((e) => e.startsWith('embed'));
    const lastCount = embedder.events.lastIndexOf('count pg0 item 39');
    expect(firstEmbed).toBeGreaterThanOrEqual(0);
    expect(firstEmbed).toBeLessThan(lastCount);
  });

  it("queues the next page's batches while the model is still on the previous page's last batch", async () => {
    const { source } = await createScriptedSource(h.metadata, 'no-pause', { pages: pagesOf(3, 20) });
    let page0Texts = 0;
    let holding = false;
    let nextPageWhileHeld = false;
    let release!: () => void;
    embedder.onEmbed = async (texts) => {
      if (onPage(1)(texts) && holding) {
        nextPageWhileHeld = true;
        release();
      }
      if (!onPage(0)(texts)) return;
      page0Texts += texts.length;
      if (page0Texts < 20) return;
      // Page 0's last batch: held until page 1's first batch arrives (or, if it never does, 5 s).
      holding = true;
      await new Promise<void>((resolve) => {
        release = resolve;
        setTimeout(resolve, 5_000).unref();
      });
      holding = false;
    };
    const run = await syncNow(h, source.id);
    expect(run.status).toBe('succeeded');
    expect(nextPageWhileHeld).toBe(true);
    expect(run.stats.added).toBe(60);
    expect(await h.metadata.sources.cursor(source.id)).toBe('done');
  });

  it("hands an embedder that batches across calls all of a page's batches at once, any other two at a time", async () => {
    for (const across of [false, true]) {
      embedder.batchesAcrossCalls = across;
      embedder.maxOutstanding.clear();
      // Every call waits a little, so batches handed over pile up if the pipeline lets them.
      embedder.onEmbed = () => new Promise((resolve) => setTimeout(resolve, 5));
      const { source } = await createScriptedSource(h.metadata, `across-${across}`, { pages: pagesOf(3, 64, `across${across}`) });
      const run = await syncNow(h, source.id);
      expect(run.status).toBe('succeeded');
      expect(run.stats.chunksEmbedded).toBe(192);
      // Pages after the first (which is prepared in pieces) are handed over whole: 8 batches of 8.
      for (const page of ['pg1', 'pg2']) expect(embedder.maxOutstanding.get(page)).toBe(across ? 8 : 2);
    }
  });

  it('on a stop, finishes the page in flight and commits none of the pages read ahead of it', async () => {
    const { source } = await createScriptedSource(h.metadata, 'stopped', { pages: pagesOf(5, 6) });
    const stop = new AbortController();
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let laterPages = 0;
    embedder.onEmbed = async (texts) => {
      if (onPage(2)(texts) || onPage(3)(texts)) laterPages++;
      if (!onPage(1)(texts) || stop.signal.aborted) return;
      // Page 1 is in flight: the stop arrives, and page 1 goes on only once the pages behind it are read and embedded.
      stop.abort();
      setTimeout(release, 300).unref();
      await held;
    };
    const { run } = await h.metadata.runs.start(source.id, 'full');
    const outcome = await createSyncWork(h)({ sourceId: source.id, runId: run.id, mode: null, attempt: 0, throttled: 0 }, { signal: stop.signal });
    expect(outcome.kind).not.toBe('done');
    expect(laterPages).toBeGreaterThan(0);
    const docs = await h.metadata.documents.list({ sourceId: source.id, limit: 100 });
    const indexed = docs.filter((d) => d.status === 'indexed').map((d) => d.externalId).sort();
    expect(indexed).toEqual(['doc-0', 'doc-1'].flatMap((p) => Array.from({ length: 6 }, (_, i) => `${p}-${i}`)).sort());
    expect(await h.vectors.count({ sourceId: source.id })).toBe(12);
    expect(await h.metadata.sources.cursor(source.id)).not.toBe('done');
  });

  it('commits the pages before a failed embedding and nothing after it', async () => {
    const { source } = await createScriptedSource(h.metadata, 'fails', { pages: pagesOf(4, 10) });
    embedder.onEmbed = (texts) => {
      if (onPage(1)(texts)) throw new Error('model crashed on page 1');
    };
    const run = await syncNow(h, source.id);
    expect(run.status).not.toBe('succeeded');
    expect(run.error).toMatch(/model crashed on page 1/);
    const docs = await h.metadata.documents.list({ sourceId: source.id, limit: 100 });
    const indexed = docs.filter((d) => d.status === 'indexed').map((d) => d.externalId).sort();
    expect(indexed).toEqual(Array.from({ length: 10 }, (_, i) => `doc-0-${i}`).sort());
    expect(await h.vectors.count({ sourceId: source.id })).toBe(10);
    expect(await h.metadata.sources.cursor(source.id)).toBeNull();
  });
});

import { normalizeAcl as canonicalAcl } from '../access/principals.ts';
import type { Change, DocumentMeta, ResolvedAcl } from '../connectors/interface.ts';
import { UpstreamError, errorMessage } from '../errors.ts';
import { DEFAULT_MAX_BYTES, UnsupportedContentError, extractText } from '../extract/index.ts';
import type { DocumentUpsert } from '../metadata/interface.ts';
import type { DocumentRecord, RunStats, Source } from '../types.ts';
import type { ChunkPoint } from '../vectorstore/interface.ts';
import { metrics } from '../metrics.ts';
import { chunkDocument, embeddingText } from './chunker.ts';
import type { IndexerContext } from './deps.ts';
import { aclHash, chunkIdFor, documentIdFor, sha256 } from './hash.ts';
import { mapLimit } from '../concurrency.ts';

const FETCH_CONCURRENCY = 4;

type Plan =
  | { kind: 'none' }
  | { kind: 'unchanged'; externalId: string }
  | { kind: 'meta'; doc: DocumentUpsert; aclChanged: boolean; cleanup: boolean }
  | { kind: 'index'; doc: DocumentUpsert; chunks: { text: string; embedText: string; sectionPath: string[]; passage: string }[]; isNew: boolean; existing: DocumentRecord | null }
  | { kind: 'record'; doc: DocumentUpsert; outcome: 'failed' | 'skipped'; reason: string; existing: DocumentRecord | null }
  | { kind: 'delete'; existing: DocumentRecord };

export interface PageInput {
  source: Source;
  runId: string;
  changes: Change[];
  stats: RunStats;
  warnings: string[];
}

/** A page whose changes are planned (fetched, extracted, chunked) and, after `embedPage`, embedded. */
export interface PreparedPage {
  input: PageInput;
  plans: Plan[];
  /** The external ids the page touches (a later page that shares one must wait for this one's commit). */
  externalIds: string[];
}

/**
 * Applies one page of changes so that re-applying it is harmless: document and chunk ids are
 * derived from (source, externalId, generation, index), and each step can be repeated.
 * A retryable upstream error aborts the page (the job retries it; its cursor was not committed).
 * The three steps are separate so a sync can overlap them across pages (src/indexer/pipeline.ts).
 */
export async function applyPage({ ctx, input }: { ctx: IndexerContext; input: PageInput }): Promise<void> {
  const page = await preparePage({ ctx, input });
  await startEmbedding(ctx, page).done;
  await commitPage(ctx, page);
}

/** Reads the registry once for the page and plans every change: fetch, extract and chunk what changed. */
export async function preparePage({ ctx, input }: { ctx: IndexerContext; input: PageInput }): Promise<PreparedPage> {
  const { source, changes } = input;
  // One registry read for the whole page; planning never sees its own page's writes anyway.
  const externalIds = changes.map((c) => (c.kind === 'upsert' ? c.doc.externalId : c.externalId));
  const known = new Map((await ctx.metadata.documents.byExternalIds(source.id, externalIds)).map((d) => [d.externalId, d]));
  const plans = await mapLimit(changes, FETCH_CONCURRENCY, (change) => {
    const existing = known.get(change.kind === 'upsert' ? change.doc.externalId : change.externalId) ?? null;
    return plan(ctx, source, change, existing, input.warnings);
  });
  return { input, plans, externalIds };
}

export interface PageEmbedding {
  /**
   * Settles once the page's last batch is handed to the embedder (or there is nothing to embed):
   * the next page's batches can be queued behind it, so the model does not wait between pages.
   * Rejects if embedding fails before that.
   */
  queued: Promise<void>;
  /** Settles when every vector the page needs is in the cache and on its plans. */
  done: Promise<void>;
}

/** Starts embedding what the page's plans need and the cache does not have. */
export function startEmbedding(ctx: IndexerContext, page: PreparedPage): PageEmbedding {
  let markQueued!: () => void;
  const handedOver = new Promise<void>((resolve) => { markQueued = resolve; });
  const done = embedPlans(ctx, page.plans, page.input.stats, () => markQueued());
  const queued = Promise.race([handedOver, done]);
  // Whoever awaits these sees a failure; one that nobody awaits (a later failure ended the sync) is not unhandled.
  done.catch(() => undefined);
  queued.catch(() => undefined);
  return { queued, done };
}

/** Writes the page's new generations, switches the registry to them and applies the other plans. */
export async function commitPage(ctx: IndexerContext, page: PreparedPage): Promise<void> {
  const { input, plans } = page;
  const { source, runId, stats } = input;
  await writeIndexed(ctx, source, plans.filter((p): p is IndexPlanWithVectors => p.kind === 'index'), runId);

  const touched: string[] = [];
  for (const p of plans) {
    switch (p.kind) {
      case 'none':
        break;
      case 'unchanged':
        stats.unchanged++;
        touched.push(p.externalId);
        break;
      case 'meta':
        // Vectors first: a revocation takes effect even if we crash before the registry catches up,
        // and search also checks the registry ACL, so the stricter of the two always wins.
        if (p.aclChanged) await ctx.vectors.setDocumentAcl(p.doc.id!, p.doc.acl);
        if (p.cleanup) await ctx.vectors.deleteDocument(p.doc.id!, { keepGeneration: p.doc.generation });
        await ctx.metadata.documents.upsert(p.doc, runId);
        if (p.aclChanged) stats.aclUpdated++;
        else stats.unchanged++;
        break;
      case 'index':
        if (p.isNew) stats.added++;
        else stats.updated++;
        break;
      case 'record': {
        const { existing } = p;
        if (existing && existing.status === 'indexed' && p.outcome === 'failed') {
          // Keep serving the last good version; the failure is reported, and retried next run.
          await ctx.metadata.documents.upsert({ ...existing, error: p.reason, contentVersion: null }, runId);
        } else {
          if (existing) {
            await ctx.vectors.deleteDocument(existing.id);
            await ctx.metadata.embeddings.forget(existing.id);
          }
          await ctx.metadata.documents.upsert(p.doc, runId);
        }
        if (p.outcome === 'failed') stats.failed++;
        else stats.skipped++;
        pushWarning(input.warnings, `${p.doc.path ?? p.doc.externalId}: ${p.reason}`);
        break;
      }
      case 'delete':
        await ctx.vectors.deleteDocument(p.existing.id);
        await ctx.metadata.embeddings.forget(p.existing.id);
        await ctx.metadata.documents.delete(p.existing.id);
        stats.deleted++;
        break;
    }
  }
  if (touched.length) await ctx.metadata.documents.touch(source.id, touched, runId);
}

async function plan(ctx: IndexerContext, source: Source, change: Change, existing: DocumentRecord | null, warnings: string[]): Promise<Plan> {
  if (change.kind === 'delete') {
    return existing ? { kind: 'delete', existing } : { kind: 'none' };
  }
  if (change.kind === 'acl') {
    if (!existing) return { kind: 'none' };
    const acl = normalizeAcl(change.acl, warnings, existing.path ?? existing.externalId);
    const hash = aclHash(acl);
    if (hash === existing.aclHash) return { kind: 'unchanged', externalId: existing.externalId };
    return { kind: 'meta', doc: { ...existing, acl, aclHash: hash }, aclChanged: true, cleanup: false };
  }

  const { doc: meta } = change;
  const acl = normalizeAcl(change.acl, warnings, meta.path ?? meta.externalId);
  const hash = aclHash(acl);
  const base = baseRecord(source, meta, acl, hash, existing);

  const sameVersion = existing && meta.contentVersion !== null && existing.contentVersion === meta.contentVersion;
  const settled = existing && (existing.status === 'indexed' || existing.status === 'skipped');
  if (sameVersion && settled) return sameContent(existing, base, false);

  // Too large to extract anyway (the extractor refuses it): do not download it at all.
  if (meta.size !== undefined && meta.size > DEFAULT_MAX_BYTES) return skipped(base, `larger than ${DEFAULT_MAX_BYTES} bytes`, existing);
  let bytes: Buffer;
  let mimeType: string | null;
  try {
    const fetched = await change.fetch();
    bytes = fetched.bytes;
    mimeType = fetched.mimeType ?? meta.mimeType;
  } catch (err) {
    if (err instanceof UpstreamError && err.retryable) throw err;
    return failed(base, `download failed: ${errorMessage(err)}`, existing);
  }
  const contentHash = sha256(bytes);
  base.contentHash = contentHash;
  base.mimeType = mimeType;
  if (settled && existing.contentHash === contentHash) {
    // Touched but identical (or a half-finished earlier write): no embedding, but clear any
    // chunk generation that an interrupted run may have left behind.
    return sameContent(existing, base, existing.contentVersion === null);
  }

  let extracted;
  try {
    extracted = await extractText({ bytes, mimeType, fileName: meta.path ?? meta.externalId });
  } catch (err) {
    if (err instanceof UnsupportedContentError) return skipped(base, err.message, existing);
    return failed(base, `cannot extract text: ${errorMessage(err)}`, existing);
  }
  const title = extracted.title?.trim() || leadingHeading(extracted.text) || meta.title;
  base.title = title;
  let pieces;
  try {
    pieces = await chunkDocument(
      { text: extracted.text, format: extracted.format, title },
      { maxTokens: ctx.embedder.maxTokens, countTokens: (t) => ctx.embedder.countTokens(t), passageChars: ctx.config.SEARCH_CONTEXT_CHARS },
    );
  } catch (err) {
    // Splitting depends on nothing but the text, so a text it fails on would fail every run again:
    // that one document is reported, not the whole source stopped.
    return failed(base, `cannot split the text into chunks: ${errorMessage(err)}`, existing);
  }
  const chunks = pieces.map((c) => ({ text: c.text, sectionPath: c.sectionPath, embedText: embeddingText(title, c), passage: c.passage }));
  return { kind: 'index', doc: { ...base, generation: (existing?.generation ?? 0) + 1, chunkCount: chunks.length }, chunks, isNew: !existing || existing.status !== 'indexed', existing };
}

function sameContent(existing: DocumentRecord, base: DocumentUpsert, cleanup: boolean): Plan {
  const aclChanged = base.aclHash !== existing.aclHash;
  const metaChanged = cleanup || aclChanged || (titleFromName(existing) && base.title !== existing.title) || base.path !== existing.path ||
    base.url !== existing.url || base.contentVersion !== existing.contentVersion ||
    base.lastModified.getTime() !== existing.lastModified.getTime() || base.owner !== existing.owner;
  if (!metaChanged) return { kind: 'unchanged', externalId: existing.externalId };
  // A title taken from the file name follows a rename; one taken from the content stays.
  const title = titleFromName(existing) ? base.title : existing.title;
  return {
    kind: 'meta',
    doc: { ...base, title, contentHash: existing.contentHash, generation: existing.generation, chunkCount: existing.chunkCount, status: existing.status, error: existing.error },
    aclChanged,
    cleanup,
  };
}

/** Connectors title files by name with (SharePoint) or without (filesystem) the extension. */
function titleFromName(doc: DocumentRecord): boolean {
  if (!doc.path) return false;
  const name = doc.path.split('/').pop() ?? '';
  return doc.title === name || doc.title === name.replace(/\.[^.]+$/, '');
}

/** Recorded but not indexed; a skipped file keeps its contentVersion so it is not fetched again until it changes. */
function skipped(base: DocumentUpsert, reason: string, existing: DocumentRecord | null): Plan {
  return { kind: 'record', doc: { ...base, status: 'skipped', error: reason, chunkCount: 0 }, outcome: 'skipped', reason: `skipped: ${reason}`, existing };
}

/** A failed document is fetched again next run (contentVersion null). */
function failed(base: DocumentUpsert, reason: string, existing: DocumentRecord | null): Plan {
  return { kind: 'record', doc: { ...base, status: 'failed', error: reason, contentVersion: null, chunkCount: 0 }, outcome: 'failed', reason, existing };
}

/** Postgres refuses NUL in text; whatever an upstream sends is stored without it. */
const storable = <T extends string | null>(s: T): T => (s === null ? s : (s.replaceAll('\u0000', '') as T));

function baseRecord(source: Source, meta: DocumentMeta, acl: string[], hash: string, existing: DocumentRecord | null): DocumentUpsert {
  return {
    id: existing?.id ?? documentIdFor(source.id, meta.externalId),
    sourceId: source.id,
    externalId: meta.externalId,
    title: storable(meta.title),
    url: storable(meta.url),
    path: storable(meta.path),
    mimeType: storable(meta.mimeType),
    owner: storable(meta.owner),
    labels: (meta.labels ?? []).map(storable),
    lastModified: meta.lastModified,
    contentVersion: meta.contentVersion,
    contentHash: existing?.contentHash ?? null,
    aclHash: hash,
    acl,
    generation: existing?.generation ?? 0,
    chunkCount: existing?.chunkCount ?? 0,
    status: 'indexed',
    error: null,
  };
}

/**
 * Embeds, once per distinct text, every chunk the page needs that the cache does not have;
 * `queued` is called when the last batch has been handed to the embedder.
 */
async function embedPlans(ctx: IndexerContext, plans: Plan[], stats: RunStats, queued: () => void): Promise<void> {
  const wanted = new Map<string, string>();
  const owners = new Map<string, { sourceId: string; documentId: string }>();
  const hashes = new Map<Plan, string[]>();
  for (const p of plans) {
    if (p.kind !== 'index') continue;
    const hs = p.chunks.map((c) => sha256(c.embedText));
    hashes.set(p, hs);
    p.chunks.forEach((c, i) => {
      const h = hs[i]!;
      wanted.set(h, c.embedText);
      if (!owners.has(h)) owners.set(h, { sourceId: p.doc.sourceId, documentId: p.doc.id! });
    });
  }
  if (wanted.size === 0) return;
  const model = ctx.embedder.modelId;
  const cached = await ctx.metadata.embeddings.get(model, [...wanted.keys()]);
  // Similar lengths in one batch keep padding (wasted inference) small; in tokens, which the
  // chunker has just counted (by characters, batches were ~6 % longer than they need be).
  const tokens = new Map([...wanted].filter(([h]) => !cached.has(h)).map(([h, t]) => [h, ctx.embedder.countTokens(t)]));
  const missing = [...wanted].filter(([h]) => tokens.has(h))
    .sort((a, b) => tokens.get(a[0])! - tokens.get(b[0])! || a[1].length - b[1].length);
  const batch = ctx.config.EMBEDDING_BATCH_SIZE;
  const slices: [string, string][][] = [];
  for (let i = 0; i < missing.length; i += batch) slices.push(missing.slice(i, i + batch));
  // Two batches in flight: the next one is queued at the embedder while this one's cache write
  // runs, so the model never waits for the database. An embedder that batches across calls gets
  // them all: it then batches this page's texts with the next page's (fewer padded tokens).
  await mapLimit(slices, ctx.embedder.batchesAcrossCalls ? slices.length : 2, async (slice, i) => {
    const embedding = ctx.embedder.embed(slice.map(([, t]) => t));
    if (i === slices.length - 1) queued();
    const vectors = await embedding;
    const entries = slice.map(([textHash], j) => ({ textHash, vector: vectors[j]!, ...owners.get(textHash)! }));
    for (const e of entries) cached.set(e.textHash, e.vector);
    stats.chunksEmbedded += slice.length;
    metrics.chunksEmbedded.inc(slice.length);
    await ctx.metadata.embeddings.put(model, entries);
  });
  for (const [p, hs] of hashes) (p as IndexPlanWithVectors).vectors = hs.map((h) => cached.get(h)!);
}

type IndexPlanWithVectors = Extract<Plan, { kind: 'index' }> & { vectors?: number[][] };

/**
 * Crash-safe replacement, batched per page:
 *  1. mark each row "write in progress" (contentVersion null; a new document gets a 'pending' row);
 *  2. write the new generation's points (one batch for the page);
 *  3. switch the row to the new generation (search only shows the row's generation);
 *  4. delete every other generation, then set contentVersion.
 * A row found still marked by an earlier, interrupted write may have orphan points of any
 * generation, so those are cleared before step 2; a clean row (contentVersion set) has none,
 * because every write marks the row before it touches the vector store.
 */
async function writeIndexed(ctx: IndexerContext, source: Source, plans: IndexPlanWithVectors[], runId: string): Promise<void> {
  if (!plans.length) return;
  const marks: DocumentUpsert[] = [];
  for (const { doc, existing } of plans) {
    const live = existing?.status === 'indexed' ? existing : null;
    const interrupted = existing && (existing.contentVersion === null || existing.status === 'pending');
    if (interrupted) await ctx.vectors.deleteDocument(doc.id!, live ? { keepGeneration: live.generation } : undefined);
    if (!existing) marks.push({ ...doc, generation: 0, chunkCount: 0, status: 'pending', contentVersion: null, contentHash: null });
    else if (existing.contentVersion !== null) marks.push({ ...existing, contentVersion: null });
  }
  await ctx.metadata.documents.upsertMany(marks, runId);
  const pointsOf = (ps: IndexPlanWithVectors[]): ChunkPoint[] => ps.flatMap(({ doc, chunks, vectors }) => chunks.map((c, i) => ({
    id: chunkIdFor(doc.id!, doc.generation, i),
    vector: vectors![i]!,
    documentId: doc.id!,
    sourceId: source.id,
    generation: doc.generation,
    chunkIndex: i,
    sectionPath: c.sectionPath,
    text: c.text,
    context: c.passage,
    lastModified: doc.lastModified.getTime(),
    acl: doc.acl,
  })));
  // A document the registry did not know has no points: its row is written (above) before any of
  // them, and removed only after them. Its points are appended; a plain append does not read the
  // table's ids as a merge does, whose cost grows with the table.
  // A page that lists a document twice plans it twice, with the same ids: the last one is written.
  const fresh = [...new Map(pointsOf(plans.filter((p) => !p.existing)).map((p) => [p.id, p])).values()];
  const known = pointsOf(plans.filter((p) => p.existing));
  const append = ctx.vectors.insertNew?.bind(ctx.vectors) ?? ((p: ChunkPoint[]) => ctx.vectors.upsert(p));
  for (let i = 0; i < fresh.length; i += 1000) await append(fresh.slice(i, i + 1000));
  for (let i = 0; i < known.length; i += 1000) await ctx.vectors.upsert(known.slice(i, i + 1000));
  // Only a document that had live chunks has an old generation to remove after the switch.
  const replaced = plans.filter((p) => p.existing?.status === 'indexed');
  await ctx.metadata.documents.upsertMany(plans.map(({ doc, existing }) => (existing?.status === 'indexed' ? { ...doc, contentVersion: null } : doc)), runId);
  for (const { doc, chunks } of replaced) {
    await ctx.vectors.deleteDocument(doc.id!, { keepGeneration: doc.generation });
    // The old generation's text is gone from the index; its vectors go from the cache too.
    await ctx.metadata.embeddings.forget(doc.id!, chunks.map((c) => sha256(c.embedText)));
  }
  await ctx.metadata.documents.upsertMany(replaced.map(({ doc }) => doc).filter((doc) => doc.contentVersion !== null), runId);
}

/** A Markdown-shaped document's top heading is a better title than its file name. */
export function leadingHeading(text: string): string | undefined {
  const m = /^\s*#\s+(.+?)\s*#*\s*$/m.exec(text.split('\n').filter((l) => !/^(---|[a-z_-]+:\s)/i.test(l)).slice(0, 20).join('\n'));
  return m?.[1]?.trim() || undefined;
}

/**
 * The ACL as the registry and the vector store keep it: canonical principals only. Anything a
 * connector passed that is not a principal grants nothing and is reported like the problems the
 * connector found itself.
 */
function normalizeAcl(resolved: ResolvedAcl, warnings: string[], where: string): string[] {
  const { acl, rejected } = canonicalAcl(resolved.principals);
  const problems = [...(resolved.problems ?? []), ...rejected.map((r) => `not a principal: ${JSON.stringify(r).slice(0, 100)}`)];
  reportAclProblems(warnings, where, problems);
  return acl;
}

/**
 * One warning per distinct problem with a count, not one per document: a tenant-wide issue
 * (say, an unresolvable SharePoint group on every file) stays readable.
 */
function reportAclProblems(warnings: string[], where: string, problems: string[]) {
  for (const problem of problems) {
    const prefix = `permissions: ${problem} — `;
    const i = warnings.findIndex((w) => w.startsWith(prefix));
    if (i < 0) {
      pushWarning(warnings, `${prefix}1 document (${where})`);
      continue;
    }
    const m = / — (\d+) documents? \((.*)\)$/.exec(warnings[i]!);
    const n = (m ? Number(m[1]) : 1) + 1;
    warnings[i] = `${prefix}${n} documents (e.g. ${m ? m[2]!.replace(/^e\.g\. /, '') : where})`;
  }
}

const MAX_WARNINGS = 500;
export function pushWarning(warnings: string[], w: string) {
  if (warnings.length < MAX_WARNINGS && !warnings.includes(w)) warnings.push(w);
}

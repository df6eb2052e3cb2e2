import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { DEFAULT_FUSION, fuse, SEARCH_MODES, type FusionOptions, type SearchMode } from '../retrieval/fusion.ts';
import { search, type SearchResult } from '../retrieval/search.ts';
import { closeServices } from '../services.ts';
import type { VectorHit } from '../vectorstore/interface.ts';
import { addFolderSource, benchServices, timedSync } from './harness.ts';

/** The group every benchmark document is shared with, and that the querying user is in: filtering is exercised, not bypassed. */
const READERS = 'scifact-readers';
const DEPTH = 100;

type Qrels = Map<string, Map<string, number>>;

/** nDCG@10 and Recall@100 of one ranked list of document ids (BEIR's definitions, graded gains 2^rel − 1). */
export function scoreRanking(ranked: string[], rel: Map<string, number>): { ndcg: number; recall: number } {
  const dcg = ranked.slice(0, 10).reduce((acc, d, i) => acc + ((rel.get(d) ?? 0) > 0 ? (2 ** rel.get(d)! - 1) / Math.log2(i + 2) : 0), 0);
  const ideal = [...rel.values()].filter((g) => g > 0).sort((a, b) => b - a).slice(0, 10).reduce((acc, g, i) => acc + (2 ** g - 1) / Math.log2(i + 2), 0);
  const relevant = [...rel].filter(([, g]) => g > 0).map(([d]) => d);
  const top = new Set(ranked.slice(0, DEPTH));
  return { ndcg: ideal ? dcg / ideal : 0, recall: relevant.length ? relevant.filter((d) => top.has(d)).length / relevant.length : 0 };
}

/** Documents ranked by their best chunk. */
const byDocument = (chunks: { doc: string }[]) => [...new Set(chunks.map((c) => c.doc))];

interface CachedQuery { qid: string; vector: { doc: string; id: string; score: number }[]; keyword: { doc: string; id: string; score: number }[] }

/**
 * Retrieval quality of the whole pipeline (extract → chunk → embed → index → permission-filtered
 * search) on a BEIR-layout dataset folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), for the
 * three search modes in one run. Every document is readable through a group ACL the querying user
 * holds. `workDir` keeps the corpus and the index between runs, so a second run (say, after a
 * chunking change) embeds only chunks whose text changed; `save` writes each query's channel
 * rankings, from which fusion settings are compared without searching again.
 */
export async function benchQuality({ dataset, limit, workDir, save }: { dataset: string; limit: number; workDir?: string; save?: string }) {
  const qrels: Qrels = new Map();
  const lines = (await readFile(path.join(dataset, 'qrels/test.tsv'), 'utf8')).split('\n').slice(1);
  for (const line of lines) {
    const [q, d, score] = line.replace(/\r$/, '').split('\t');
    if (!q || !d) continue;
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, Number(score));
  }
  const wanted = new Set([...qrels.values()].flatMap((m) => [...m.keys()]));
  const tmp = workDir ? path.resolve(workDir) : await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-quality-'));
  try {
    const corpus = path.join(tmp, 'corpus');
    const reuse = !!workDir && (await stat(corpus).then(() => true, () => false));
    await mkdir(corpus, { recursive: true });
    // With a limit, the judged documents come first so the figures stay meaningful on a subset.
    const docs: { _id: string; title: string; text: string }[] = [];
    for await (const line of readline.createInterface({ input: createReadStream(path.join(dataset, 'corpus.jsonl')) })) {
      if (line.trim()) docs.push(JSON.parse(line));
    }
    docs.sort((a, b) => Number(wanted.has(b._id)) - Number(wanted.has(a._id)));
    const chosen = limit > 0 ? docs.slice(0, limit) : docs;
    if (!reuse) {
      await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: [`group:${READERS}`] }));
      for (const d of chosen) await writeFile(path.join(corpus, `${d._id}.md`), `# ${d.title}\n\n${d.text}\n`);
    }
    const indexed = new Set(chosen.map((d) => d._id));
    const queries = new Map<string, string>();
    for await (const line of readline.createInterface({ input: createReadStream(path.join(dataset, 'queries.jsonl')) })) {
      if (!line.trim()) continue;
      const q = JSON.parse(line);
      if (qrels.has(q._id)) queries.set(q._id, q.text);
    }

    const s = await benchServices(tmp);
    const existing = (await s.metadata.sources.list()).find((x) => x.name === 'quality');
    const source = existing ?? (await addFolderSource(s, 'quality', corpus));
    console.log(`ingesting ${chosen.length} documents from ${dataset} (${reuse ? 'incremental, reusing ' + tmp : 'full'}) …`);
    let last = -1;
    const { stats, seconds: ingest } = await timedSync(s, source.id, (st, secs) => {
      if (st.seen === last) return;
      last = st.seen;
      console.log(`  ${secs.toFixed(0)} s: ${st.seen}/${chosen.length} documents seen, ${st.chunksEmbedded} chunks embedded`);
    });
    const chunks = await s.vectors.count({ sourceId: source.id });
    console.log(`ingest done in ${ingest.toFixed(0)} s: ${stats.seen} documents seen, ${stats.chunksEmbedded} chunks embedded, ${chunks} chunks in the index`);

    const ctx = { ...s, caller: { kind: 'user' as const, email: 'bench@example.test', groups: [READERS], isAdmin: false, isCompliance: false }, requestId: 'bench' };
    const externalOf = new Map<string, string>();
    const docOf = async (results: SearchResult[]) => {
      const missing = [...new Set(results.map((r) => r.documentId))].filter((id) => !externalOf.has(id));
      for (const d of await s.metadata.documents.byIds(missing)) externalOf.set(d.id, path.basename(d.externalId, '.md'));
      return results.map((r) => ({ doc: externalOf.get(r.documentId) ?? '', id: r.chunkId, score: r.score }));
    };
    const totals = Object.fromEntries(SEARCH_MODES.map((m) => [m, { ndcg: 0, recall: 0 }])) as Record<SearchMode, { ndcg: number; recall: number }>;
    const cache: CachedQuery[] = [];
    const sizes = { text: [] as number[], context: [] as number[] };
    let counted = 0;
    const t0 = performance.now();
    for (const [qid, text] of queries) {
      const rel = qrels.get(qid)!;
      if (![...rel.keys()].some((d) => indexed.has(d))) continue;
      const lists = {} as Record<SearchMode, { doc: string; id: string; score: number }[]>;
      for (const mode of SEARCH_MODES) {
        const results = await search({ ctx, input: { query: text, topK: DEPTH, mode } });
        if (mode === 'hybrid') for (const r of results.slice(0, 10)) { sizes.text.push(r.text.length); sizes.context.push(r.context.length); }
        lists[mode] = await docOf(results);
        const m = scoreRanking(byDocument(lists[mode]), rel);
        totals[mode].ndcg += m.ndcg;
        totals[mode].recall += m.recall;
      }
      cache.push({ qid, vector: lists.vector, keyword: lists.keyword });
      if (++counted % 50 === 0) console.log(`  ${counted}/${queries.size} queries (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    if (save) await writeFile(save, JSON.stringify({ dataset, qrels: Object.fromEntries([...qrels].map(([q, m]) => [q, Object.fromEntries(m)])), queries: cache }));

    console.log(`dataset: ${dataset}   documents: ${indexed.size}   chunks: ${chunks}   model: ${s.embedder.modelId}   vector store: ${s.vectors.kind}   queries: ${counted}`);
    console.log(`search as a user in group:${READERS} (every document shared with that group), topK ${DEPTH}, documents ranked by their best chunk`);
    for (const mode of SEARCH_MODES) {
      console.log(`  ${mode.padEnd(8)} nDCG@10 ${(totals[mode].ndcg / counted).toFixed(3)}   Recall@100 ${(totals[mode].recall / counted).toFixed(3)}`);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    console.log(`returned passages (hybrid top 10): text median ${median(sizes.text)} chars (min ${Math.min(...sizes.text)}, max ${Math.max(...sizes.text)}), ` +
      `context median ${median(sizes.context)} chars (max ${Math.max(...sizes.context)})`);
    console.log(`hybrid fusion: ${JSON.stringify(DEFAULT_FUSION)}`);
    await closeServices(s);
  } finally {
    if (!workDir) await rm(tmp, { recursive: true, force: true });
  }
}

/** Compares fusion settings on the channel rankings a `--save`d run wrote, without searching again. */
export async function compareFusion({ file }: { file: string }) {
  const saved = JSON.parse(await readFile(file, 'utf8')) as { qrels: Record<string, Record<string, number>>; queries: CachedQuery[] };
  const asHits = (xs: CachedQuery['vector']): VectorHit[] => xs.map((x) => ({
    point: { id: x.id, documentId: x.doc, sourceId: '', generation: 0, chunkIndex: 0, sectionPath: [], text: '', lastModified: 0, acl: [] }, score: x.score,
  }));
  const variants: [string, FusionOptions][] = [
    ...[0.2, 0.3, 0.4, 0.5, 0.6, 0.7].map((w): [string, FusionOptions] => [`score w_vector=${w}`, { method: 'score', vectorWeight: w, rrfK: 60 }]),
    ...[10, 60].map((k): [string, FusionOptions] => [`rrf k=${k}`, { method: 'rrf', vectorWeight: 0.5, rrfK: k }]),
  ];
  const evalList = (f: (q: CachedQuery) => string[]) => {
    let ndcg = 0;
    let recall = 0;
    for (const q of saved.queries) {
      const m = scoreRanking(f(q), new Map(Object.entries(saved.qrels[q.qid]!)));
      ndcg += m.ndcg;
      recall += m.recall;
    }
    return `nDCG@10 ${(ndcg / saved.queries.length).toFixed(3)}   Recall@100 ${(recall / saved.queries.length).toFixed(3)}`;
  };
  console.log(`queries: ${saved.queries.length}`);
  console.log(`  vector alone          ${evalList((q) => byDocument(q.vector))}`);
  console.log(`  keyword alone         ${evalList((q) => byDocument(q.keyword))}`);
  for (const [name, opts] of variants) {
    console.log(`  ${name.padEnd(21)} ${evalList((q) => byDocument(fuse(asHits(q.vector), asHits(q.keyword), opts).map((h) => ({ doc: h.point.documentId }))).slice(0, DEPTH))}`);
  }
}

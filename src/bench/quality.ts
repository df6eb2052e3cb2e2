import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { search } from '../retrieval/search.ts';
import { closeServices } from '../services.ts';
import { addFolderSource, benchServices, timedSync } from './harness.ts';

/**
 * Retrieval quality of the whole pipeline (extract → chunk → embed → permission-filtered search)
 * on a BEIR-layout dataset folder: corpus.jsonl, queries.jsonl, qrels/test.tsv. Documents are
 * scored by their best chunk. Prints nDCG@10 and Recall@100.
 */
export async function benchQuality({ dataset, limit }: { dataset: string; limit: number }) {
  const qrels = new Map<string, Map<string, number>>();
  const lines = (await readFile(path.join(dataset, 'qrels/test.tsv'), 'utf8')).split('\n').slice(1);
  for (const line of lines) {
    const [q, d, score] = line.replace(/\r$/, '').split('\t');
    if (!q || !d) continue;
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, Number(score));
  }
  const wanted = new Set([...qrels.values()].flatMap((m) => [...m.keys()]));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-quality-'));
  try {
    const corpus = path.join(tmp, 'corpus');
    await mkdir(corpus);
    await writeFile(path.join(corpus, '.clearance-acl.json'), JSON.stringify({ read: ['everyone'] }));
    let n = 0;
    // With a limit, the judged documents come first so the figures stay meaningful on a subset.
    const docs: { _id: string; title: string; text: string }[] = [];
    for await (const line of readline.createInterface({ input: createReadStream(path.join(dataset, 'corpus.jsonl')) })) {
      if (line.trim()) docs.push(JSON.parse(line));
    }
    docs.sort((a, b) => Number(wanted.has(b._id)) - Number(wanted.has(a._id)));
    for (const d of limit > 0 ? docs.slice(0, limit) : docs) {
      await writeFile(path.join(corpus, `${d._id}.md`), `# ${d.title}\n\n${d.text}\n`);
      n++;
    }
    const indexed = new Set(docs.slice(0, limit > 0 ? limit : docs.length).map((d) => d._id));
    const queries = new Map<string, string>();
    for await (const line of readline.createInterface({ input: createReadStream(path.join(dataset, 'queries.jsonl')) })) {
      if (!line.trim()) continue;
      const q = JSON.parse(line);
      if (qrels.has(q._id)) queries.set(q._id, q.text);
    }

    const s = await benchServices(tmp);
    const source = await addFolderSource(s, 'quality', corpus);
    const { stats, seconds: ingest } = await timedSync(s, source.id);
    const ctx = { ...s, caller: { kind: 'user' as const, email: 'bench@example.test', groups: [], isAdmin: false, isCompliance: false }, requestId: 'bench' };
    const idOf = new Map<string, string>();
    let ndcg = 0;
    let recall = 0;
    let counted = 0;
    for (const [qid, text] of queries) {
      const rel = qrels.get(qid)!;
      if (![...rel.keys()].some((d) => indexed.has(d))) continue;
      const results = await search({ ctx, input: { query: text, topK: 100 } });
      const ranked: string[] = [];
      for (const r of results) {
        if (!idOf.has(r.documentId)) {
          const [doc] = await s.metadata.documents.byIds([r.documentId]);
          idOf.set(r.documentId, doc ? path.basename(doc.externalId, '.md') : '');
        }
        const id = idOf.get(r.documentId)!;
        if (!ranked.includes(id)) ranked.push(id);
      }
      const dcg = ranked.slice(0, 10).reduce((acc, d, i) => acc + ((rel.get(d) ?? 0) > 0 ? (2 ** rel.get(d)! - 1) / Math.log2(i + 2) : 0), 0);
      const ideal = [...rel.values()].sort((a, b) => b - a).slice(0, 10).reduce((acc, g, i) => acc + (2 ** g - 1) / Math.log2(i + 2), 0);
      ndcg += ideal ? dcg / ideal : 0;
      recall += [...rel.keys()].filter((d) => ranked.slice(0, 100).includes(d)).length / rel.size;
      counted++;
    }
    console.log(`dataset: ${dataset}   documents indexed: ${n}   chunks embedded: ${stats.chunksEmbedded}   ingest ${ingest.toFixed(0)} s`);
    console.log(`model: ${s.embedder.modelId}   queries: ${counted}`);
    console.log(`nDCG@10 ${(ndcg / counted).toFixed(3)}   Recall@100 ${(recall / counted).toFixed(3)}  (documents ranked by their best chunk; chunks only, no title field)`);
    await closeServices(s);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

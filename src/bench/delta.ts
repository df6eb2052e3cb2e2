import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Services } from '../context.ts';
import { closeServices } from '../services.ts';
import type { RunStats } from '../types.ts';
import { paragraph, rng, writeCorpus } from './corpus.ts';
import { addFolderSource, benchServices, timedSync } from './harness.ts';

/** One folder (with its own ACL file) per 1% of the corpus, so one ACL edit touches exactly 1%. */
const FOLDERS = 100;

interface Row {
  name: string;
  seconds: number;
  stats: RunStats;
}

/**
 * What incremental sync saves: a full sync of a generated corpus, then a 1% content edit, then a
 * permission change on 1% of the documents, each followed by an incremental sync. Embedded stores
 * (PGlite + LanceDB) in a temp dir and the configured model (the shared offline one by default).
 */
export async function benchDelta({ docs }: { docs: number }) {
  if (!Number.isInteger(docs) || docs < FOLDERS) throw new Error(`--docs must be an integer of at least ${FOLDERS}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-delta-'));
  let services: Services | undefined;
  try {
    const corpus = path.join(tmp, 'corpus');
    process.stdout.write(`generating ${docs} documents in ${FOLDERS} folders…\n`);
    const files = await writeCorpus(corpus, docs, FOLDERS, 7);
    services = await benchServices(tmp, { REDIS_URL: '', DATABASE_URL: '', QDRANT_URL: '' });
    const ctx = services;
    const source = await addFolderSource(ctx, 'bench-delta', corpus);
    const sync = async (name: string): Promise<Row> => {
      const row = { name, ...(await timedSync(ctx, source.id)) };
      process.stdout.write(`  ${name}: ${row.seconds.toFixed(1)} s\n`);
      return row;
    };

    const full = await sync('full sync');

    // 1% content edits: one section of each picked document is rewritten, as an author would.
    const r = rng(99);
    const onePercent = Math.max(1, Math.round(docs / 100));
    const edited = pickSpread(files, onePercent);
    let clock = Date.now();
    for (const file of edited) {
      const text = await readFile(file, 'utf8');
      const at = text.lastIndexOf('\n## ');
      const head = at > 0 ? text.slice(0, at) : text;
      await writeFile(file, `${head}\n## Revised procedure\n\n${paragraph(r, 70)}\n`);
      clock += 1000;
      await utimes(file, new Date(clock), new Date(clock)); // a distinct mtime, as a real edit has
    }
    const content = await sync('1% content edit');

    // 1% permission change: one folder's ACL file (its documents are 1% of the corpus).
    const folder = path.join(corpus, 'team-0');
    await writeFile(path.join(folder, '.clearance-acl.json'), JSON.stringify({ read: ['group:team-0', 'group:auditors'] }));
    const acl = await sync('1% ACL change');

    printTable(docs, ctx, [full, content, acl]);
    const ratio = (a: number, b: number) => (b === 0 ? 'n/a' : `${((a / b) * 100).toFixed(1)}%`);
    console.log(`1% content edit vs full: time ${ratio(content.seconds, full.seconds)}, chunks embedded ${ratio(content.stats.chunksEmbedded, full.stats.chunksEmbedded)}`);
    console.log(`1% ACL change  vs full: time ${ratio(acl.seconds, full.seconds)}, chunks embedded ${ratio(acl.stats.chunksEmbedded, full.stats.chunksEmbedded)}`);
    if (content.stats.updated !== edited.length) console.log(`WARNING: ${edited.length} documents were edited but ${content.stats.updated} were re-indexed`);
    if (acl.stats.chunksEmbedded !== 0) console.log(`WARNING: the ACL-only change embedded ${acl.stats.chunksEmbedded} chunks; it must embed none`);
    if (acl.stats.aclUpdated !== docs / FOLDERS) console.log(`WARNING: ${acl.stats.aclUpdated} documents took the new ACL; expected ${docs / FOLDERS}`);
  } finally {
    if (services) await closeServices(services);
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `n` files spread evenly over the list (and so over the folders). */
function pickSpread(files: string[], n: number): string[] {
  const step = files.length / n;
  return Array.from({ length: n }, (_, i) => files[Math.floor(i * step + step / 2)]!);
}

function printTable(docs: number, ctx: Services, rows: Row[]) {
  console.log('');
  console.log(`corpus: ${docs} documents, ${FOLDERS} folders with ACL files; model: ${ctx.embedder.modelId} (${ctx.embedder.dimension}-d); metadata: ${ctx.metadata.kind}; vectors: ${ctx.vectors.kind}`);
  const header = ['run', 'time (s)', 'seen', 'added', 'updated', 'acl updated', 'unchanged', 'chunks embedded'];
  const body = rows.map((r) => [r.name, r.seconds.toFixed(1), r.stats.seen, r.stats.added, r.stats.updated, r.stats.aclUpdated, r.stats.unchanged, r.stats.chunksEmbedded].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('');
}

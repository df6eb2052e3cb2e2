import { Command } from 'commander';
import { ConfigError } from '../config.ts';
import { errorMessage } from '../errors.ts';

/** Entry point of `npx clearance`. Configuration errors end in one line, never a stack trace. */
export async function main(argv: string[]) {
  const program = new Command('clearance').description('Permission-aware RAG ingestion and retrieval').showHelpAfterError();

  program.command('serve').description('API and workers in one process (what `npm start` runs)')
    .action(() => run(async () => (await import('./serve.ts')).serve({ api: true, workers: true })));
  program.command('api').description('the HTTP API alone (workers run elsewhere, on REDIS_URL)')
    .action(() => run(async () => (await import('./serve.ts')).serve({ api: true, workers: false })));
  // bin/clearance.mjs starts workers/main.ts for this command; it is listed here for --help.
  program.command('worker').description('sync and freshness workers alone (workers/main.ts)')
    .option('--health', "exit 0 when this container's worker is alive and reaches its stores (a healthcheck)")
    .action(() => run(async () => { throw new Error('start the worker with `npx clearance worker` (bin/clearance.mjs runs workers/main.ts)'); }));
  program.command('demo').description('sample corpus, two users, one query; then keeps serving')
    .option('--no-serve', 'exit after printing the answers')
    .action((o) => run(async () => (await import('./demo.ts')).demo({ serve: o.serve })));

  const sources = program.command('sources').description('manage sources through a running service (CLEARANCE_URL, ADMIN_TOKEN)');
  const remote = (c: Command) => c.option('--url <url>', 'service URL', process.env.CLEARANCE_URL ?? `http://localhost:${process.env.PORT ?? 8787}`)
    .option('--token <token>', 'admin bearer token', process.env.ADMIN_TOKEN);
  remote(sources.command('add').description('add a source'))
    .requiredOption('--name <name>').requiredOption('--type <type>', 'filesystem | sharepoint | google_drive | confluence')
    .option('--config <json>', 'connector config as JSON', '{}')
    .option('--path <path>', 'shorthand for filesystem: --config {"path": …}')
    .option('--credentials <json>', 'credentials as JSON')
    .option('--interval <seconds>', 'sync schedule')
    .action((o) => run(async () => (await import('./sources.ts')).add(o)));
  remote(sources.command('list').description('list sources')).action((o) => run(async () => (await import('./sources.ts')).list(o)));
  remote(sources.command('sync').description('sync a source').argument('<id>')
    .option('--full', 'full enumeration instead of incremental').option('--wait', 'wait for the run and show progress'))
    .action((id, o) => run(async () => (await import('./sources.ts')).sync(id, o)));
  remote(sources.command('remove').description('remove a source and everything indexed from it').argument('<id>'))
    .action((id, o) => run(async () => (await import('./sources.ts')).remove(id, o)));

  program.command('token').description('mint a dev token (AUTH_MODE=dev only)')
    .requiredOption('--email <email>').option('--groups <list>', 'comma-separated IdP groups', '')
    .option('--expires <duration>', 'lifetime, e.g. 8h', '8h').option('--admin', 'admin role').option('--compliance', 'compliance role')
    .option('--data-dir <dir>', "the server's data directory (default: CLEARANCE_DATA_DIR, ./data, or the demo's data/demo)")
    .action((o) => run(async () => (await import('./token.ts')).token(o)));
  program.command('model').description('download the embedding model into the model cache once (or check LOCAL_MODEL_PATH), then exit')
    .action(() => run(async () => (await import('./model.ts')).fetchModel()));

  const bench = program.command('bench').description('benchmarks that print figures');
  bench.command('ingest').description('filesystem ingest chunks/s vs the raw embedding rate; past 5,000 documents: RSS while ingesting small generated documents')
    .option('--docs <n>', 'documents to generate', '300')
    .option('--runs <n>', 'measurements, each from scratch; past one, their median is printed too', '3')
    .option('--embedder <kind>', 'memory run only: "hash" (a hashed bag of words, default past 5,000 documents) or "model"')
    .action((o) => run(async () => {
      const docs = Number(o.docs);
      const m = await import('../bench/ingest.ts');
      const runs = Number(o.runs);
      if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number of at least 1');
      if (docs <= 5000 && !o.embedder) return m.benchIngestRuns({ docs, runs });
      return m.benchIngestMemory({ docs, embedder: o.embedder === 'model' ? 'model' : 'hash' });
    }));
  bench.command('search').description('search latency p50/p95 with and without the ACL filter; --synthetic: latency and recall@10 per visible fraction at scale; --overhead: with and without auditing and tracing')
    .option('--chunks <n>', 'chunks in the index', '10000').option('--queries <n>', 'queries to time', '200')
    .option('--synthetic', 'synthetic unit vectors of the model\'s dimension written straight into the store (no embedding)')
    .option('--distribution <d>', 'synthetic vectors: clustered (topics, like real embeddings) or uniform (no neighbour structure)', 'clustered')
    .option('--dir <path>', 'synthetic: keep the seeded store here and reuse it next time')
    .option('--nprobes <n>', 'synthetic, embedded: IVF partitions probed per approximate search')
    .option('--exact-max-rows <n>', 'synthetic, embedded: filters letting through at most this many rows are searched exactly')
    .option('--overhead', 'p50/p95 end to end through the HTTP app with and without the audit trail and OpenTelemetry tracing (exported to an in-process OTLP receiver)')
    .action((o) => run(async () => {
      if (o.overhead) return (await import('../bench/overhead.ts')).benchSearchOverhead({ chunks: Number(o.chunks), queries: Number(o.queries), synthetic: !!o.synthetic });
      if (!o.synthetic) return (await import('../bench/search.ts')).benchSearch({ chunks: Number(o.chunks), queries: Number(o.queries) });
      if (o.distribution !== 'clustered' && o.distribution !== 'uniform') throw new Error('--distribution must be clustered or uniform');
      const index = { ...(o.nprobes ? { nprobes: Number(o.nprobes) } : {}), ...(o.exactMaxRows ? { exactMaxRows: Number(o.exactMaxRows) } : {}) };
      return (await import('../bench/search-synthetic.ts')).benchSearchSynthetic({ chunks: Number(o.chunks), queries: Number(o.queries), distribution: o.distribution, dir: o.dir, index });
    }));
  bench.command('load').description('the search API under many concurrent callers: closed and open loop vs one at a time')
    .option('--chunks <n>', 'synthetic chunks in the index', '100000').option('--concurrency <n>', 'callers at once', '50')
    .option('--seconds <n>', 'length of each loaded run', '30').option('--single <n>', 'requests sent one at a time', '200')
    .action((o) => run(async () => (await import('../bench/load.ts')).benchLoad({ chunks: Number(o.chunks), concurrency: Number(o.concurrency), seconds: Number(o.seconds), single: Number(o.single) })));
  bench.command('delta').description('1% content change and 1% ACL change vs a full sync')
    .option('--docs <n>', 'documents in the corpus', '5000')
    .action((o) => run(async () => (await import('../bench/delta.ts')).benchDelta({ docs: Number(o.docs) })));
  bench.command('gdrive').description('Google Drive (fake Google over HTTP): API calls and time of a full sync and of a sync after a 1% change')
    .option('--files <n>', 'files in the fake shared drive', '2000').option('--latency-ms <n>', 'delay added to every fake API call', '0')
    .action((o) => run(async () => (await import('../bench/gdrive.ts')).benchGdrive({ files: Number(o.files), latencyMs: Number(o.latencyMs) })));
  bench.command('confluence').description('Confluence sync: API calls and time, full vs incremental after a 1% change (fake site)')
    .option('--pages <n>', 'pages in the fake space', '2000').option('--latency <ms>', 'latency added to every API call', '0')
    .action((o) => run(async () => (await import('../bench/confluence.ts')).benchConfluence({ pages: Number(o.pages), latencyMs: Number(o.latency) })));
  bench.command('notify').description('notification-to-searchable latency p50/p95 per source kind (fake Graph, Drive, Confluence; watched folder)')
    .option('--changes <n>', 'content edits per source kind', '50')
    .option('--kinds <list>', 'comma-separated source kinds', 'sharepoint,google_drive,confluence,filesystem')
    .option('--debounce-ms <n>', 'NOTIFICATION_DEBOUNCE_MS', '2000')
    .action((o) => run(async () => (await import('../bench/notify.ts')).benchNotify({ changes: Number(o.changes), kinds: String(o.kinds).split(','), debounceMs: Number(o.debounceMs) })));
  bench.command('freshness').description('policy evaluation rate')
    .option('--docs <n>', 'documents', '100000')
    .action((o) => run(async () => (await import('../bench/freshness.ts')).benchFreshness({ docs: Number(o.docs) })));
  bench.command('quality').description('retrieval quality (nDCG@10, Recall@100) of vector, keyword and hybrid search on a BEIR dataset folder')
    .requiredOption('--dataset <dir>').option('--limit <n>', 'documents to index (0 = all)', '0')
    .option('--work-dir <dir>', 'keep corpus and index here and reuse them next time (only changed chunks are embedded again)')
    .option('--save <file>', 'write each query\'s vector and keyword rankings (for bench fusion)')
    .action((o) => run(async () => (await import('../bench/quality.ts')).benchQuality({ dataset: o.dataset, limit: Number(o.limit), workDir: o.workDir, save: o.save })));
  bench.command('fusion').description('compare fusion settings on the rankings saved by bench quality --save')
    .requiredOption('--file <file>')
    .action((o) => run(async () => (await import('../bench/quality.ts')).compareFusion({ file: o.file })));

  await program.parseAsync(argv);
}

async function run(fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`clearance: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    process.stderr.write(`clearance: ${errorMessage(err)}\n`);
    if (process.env.CLEARANCE_DEBUG) console.error(err);
    process.exit(1);
  }
}

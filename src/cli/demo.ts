import { existsSync } from 'node:fs';
import { cp, readdir, readFile, utimes } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createApp } from '../api/app.ts';
import { listen } from '../api/server.ts';
import { loadConfig } from '../config.ts';
import { freshnessIdle } from '../freshness/evaluate.ts';
import { createAuthenticator, mintDevToken } from '../identity/index.ts';
import type { InProcessJobRunner } from '../jobs/in-process.ts';
import type { Services } from '../context.ts';
import { closeServices, createServices, startWorkers } from '../services.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { printRun, waitForRun } from './sources.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLE = path.join(repoRoot, 'examples/acme');
const SOURCE_NAME = 'Acme shared drive (sample)';
export const DEMO_QUERY = 'What is the approval process for expenses over $5,000?';
export const DEMO_USERS = [
  { email: 'alice@acme.test', groups: ['engineering'] },
  { email: 'bob@acme.test', groups: ['finance'] },
  { email: 'dana@acme.test', groups: ['hr'] },
];
/** Reads alerts and the audit trail in the console (COMPLIANCE_GROUP is `compliance` in the demo). */
export const DEMO_REVIEWER = { email: 'rita@acme.test', groups: ['compliance'] };

/** The shared offline model next to a checkout on our build machines; real users download one. */
function findLocalModel(): string | undefined {
  const candidates = [path.resolve(repoRoot, '../shared/models/universal-sentence-encoder-lite')];
  return candidates.find((p) => existsSync(path.join(p, 'onnx/model.onnx')));
}

/**
 * `npm run demo`: embedded stores in ./data/demo, the sample corpus registered as a filesystem
 * source and synced, one question answered for two people who may read different things.
 */
export async function demo(opts: { serve: boolean }) {
  const env = { ...process.env };
  env.CLEARANCE_DATA_DIR ??= path.join(repoRoot, 'data/demo');
  env.AUTH_MODE = 'dev'; // explicit: the demo mints its own tokens
  env.ADMIN_TOKEN ??= `demo-admin-${randomBytes(12).toString('hex')}`;
  env.COMPLIANCE_GROUP ??= 'compliance';
  env.LOG_LEVEL ??= 'warn';
  // The corpus sits next to the data directory, not inside it: filesystem sources may never read
  // the service's own data (its database and secret key), and the demo allows exactly this folder.
  const corpus = `${path.resolve(env.CLEARANCE_DATA_DIR)}-corpus`;
  env.FILESYSTEM_ROOTS ??= corpus;
  if (!env.LOCAL_MODEL_PATH && !env.EMBEDDING_MODEL && env.EMBEDDING_PROVIDER !== 'openai') {
    const local = findLocalModel();
    if (local) {
      env.LOCAL_MODEL_PATH = local;
      console.log(`Using the local embedding model at ${path.relative(process.cwd(), local)} (set EMBEDDING_MODEL to download another).`);
    }
  }
  const config = loadConfig(env);
  await prepareCorpus(corpus);

  console.log('Starting Clearance on embedded stores (PGlite, LanceDB, in-process jobs)…');
  const tracing = await startTracing(config);
  const services = await createServices(config);
  await startWorkers(services);
  const app = createApp(services, createAuthenticator(config));
  const admin = { authorization: `Bearer ${config.ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const get = async (p: string) => (await app.request(p, { headers: admin })).json();

  let source = ((await get('/v1/sources')).sources as { id: string; name: string }[]).find((s) => s.name === SOURCE_NAME);
  if (!source) {
    const res = await app.request('/v1/sources', {
      method: 'POST', headers: admin,
      body: JSON.stringify({
        name: SOURCE_NAME, type: 'filesystem', config: { path: corpus },
        // Policies a year, runbooks six months; templates never go stale.
        freshness: { maxAgeDays: 365, rules: [
          { match: { pathGlob: '**/*template*' }, maxAgeDays: null },
          { match: { pathGlob: '**/*runbook*' }, maxAgeDays: 180 },
        ] },
      }),
    });
    source = await res.json();
    if (res.status !== 201) throw new Error(`could not register the sample corpus: ${JSON.stringify(source)}`);
  }
  const total = await countFiles(corpus);
  const { runId } = await (await app.request(`/v1/sources/${source!.id}/sync`, { method: 'POST', headers: admin, body: '{}' })).json();
  const run = await waitForRun(get, runId, total);
  printRun(run);

  console.log(`\nThe same question, asked for ${DEMO_USERS.length} people:  "${DEMO_QUERY}"\n`);
  for (const user of DEMO_USERS) {
    const token = await mintDevToken({ ...user, dataDir: config.dataDir, expiresIn: '12h' });
    const res = await app.request('/v1/search', {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: DEMO_QUERY, topK: 20 }),
    });
    const { results } = await res.json();
    console.log(`${user.email} (groups: ${user.groups.join(', ')}) sees:`);
    // One line per document, with its best passage.
    const best = new Map<string, any>();
    for (const r of results) if (!best.has(r.documentId)) best.set(r.documentId, r);
    for (const r of [...best.values()].slice(0, 5)) {
      const where = decodeURIComponent(new URL(r.url).pathname).replace(corpus + '/', '');
      const stale = r.freshness.status === 'stale' ? `  (stale: last changed ${r.freshness.ageDays} days ago)` : '';
      console.log(`  ${r.score.toFixed(2)}  ${where.padEnd(44)} ${r.sectionPath?.slice(-1)[0] ?? r.title}${stale}`);
    }
    console.log();
  }

  await printFreshness(services, get, source!.id, corpus);

  if (!opts.serve) {
    await closeServices(services);
    await tracing.shutdown();
    return;
  }
  const server = await listen(app, { port: config.PORT, hostname: config.HOST });
  console.log(`Serving on http://localhost:${config.PORT}  (web console at /, Ctrl-C to stop)`);
  console.log(`  admin token (console and /v1/sources):  ${config.ADMIN_TOKEN}`);
  const reviewer = await mintDevToken({ ...DEMO_REVIEWER, dataDir: config.dataDir, expiresIn: '12h' });
  console.log(`  compliance reviewer ${DEMO_REVIEWER.email} (console: freshness, audit):  ${reviewer}`);
  console.log('\nReady tokens (12 h) for people who see different documents:');
  for (const user of DEMO_USERS) {
    const token = await mintDevToken({ ...user, dataDir: config.dataDir, expiresIn: '12h' });
    console.log(`  ${user.email} (${user.groups.join(', ')}):  ${token}`);
  }
  const dataDir = path.relative(process.cwd(), config.dataDir) || '.';
  console.log(`\n  try:  curl -s localhost:${config.PORT}/v1/search -H "authorization: Bearer <token>" -H 'content-type: application/json' -d '{"query":"production incident"}'`);
  console.log(`  more: AUTH_MODE=dev npx clearance token --data-dir ${dataDir} --email erin@acme.test --groups sales`);
  console.log(`  edit ACL files under ${path.relative(process.cwd(), corpus)}/ and sync again to see permissions change.`);
  const stop = async () => { server.close(); await closeServices(services); await tracing.shutdown(); process.exit(0); };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/** One line on stale documents, read through the compliance API like a reviewer would. */
async function printFreshness(services: Services, get: (p: string) => Promise<any>, sourceId: string, corpus: string) {
  // Alerts are evaluated as the sync's job ends, just after the run reads as succeeded.
  if (services.jobs.kind === 'in-process') await (services.jobs as InProcessJobRunner).idle();
  await freshnessIdle();
  const { alerts } = await get(`/v1/freshness/alerts?status=open&sourceId=${sourceId}`);
  const docs = (alerts as { kind: string; url: string; ageDays: number; expectedMaxAgeDays: number }[])
    .filter((a) => a.kind === 'document').sort((a, b) => b.ageDays - a.ageDays);
  const where = (url: string) => decodeURIComponent(new URL(url).pathname).replace(corpus + '/', '');
  console.log(docs.length === 0 ? 'No document is past its review date.'
    : `${docs.length} document${docs.length === 1 ? ' is' : 's are'} past their review date: ` +
      docs.map((a) => `${where(a.url)} (${a.ageDays} days, limit ${a.expectedMaxAgeDays})`).join(', '));
  console.log('  compliance view: GET /v1/freshness/alerts (Accept: text/csv for a spreadsheet), /v1/freshness/summary\n');
}

/**
 * Copies the sample into the data dir (so people can edit it) and back-dates files that carry a
 * `reviewed: YYYY-MM-DD` line, because git does not keep modification times. The dates are shifted
 * so the most recently reviewed file is a month old today, keeping their spacing: the demo shows
 * the same few stale documents whenever it is run.
 */
async function prepareCorpus(dest: string) {
  if (existsSync(dest)) return;
  await cp(SAMPLE, dest, { recursive: true, filter: (src) => path.basename(src) !== 'README.md' || path.dirname(src) !== SAMPLE });
  const reviewed: [string, number][] = [];
  for (const file of await walk(dest)) {
    if (!/\.(md|txt|html)$/.test(file)) continue;
    const m = /^reviewed:\s*(\d{4}-\d{2}-\d{2})\s*$/m.exec(await readFile(file, 'utf8'));
    if (m) reviewed.push([file, Date.parse(`${m[1]}T09:00:00Z`)]);
  }
  if (!reviewed.length) return;
  const shift = Date.now() - 30 * 86_400_000 - Math.max(...reviewed.map(([, t]) => t));
  for (const [file, t] of reviewed) {
    const when = new Date(t + shift);
    await utimes(file, when, when);
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function countFiles(dir: string) {
  return (await walk(dir)).filter((f) => !path.basename(f).startsWith('.')).length;
}

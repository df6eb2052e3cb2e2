import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { evaluateSource, PAGE_SIZE, type SourceEvaluation } from '../freshness/evaluate.ts';
import type { SqlDriver } from '../metadata/interface.ts';
import { PgDriver } from '../metadata/pg.ts';
import { PgliteDriver } from '../metadata/pglite.ts';
import { sqlStores, type Stores } from '../metadata/store.ts';
import type { FreshnessPolicy } from '../types.ts';
import { collectGarbage } from './corpus.ts';

const DAY = 86_400_000;
const MB = 1024 * 1024;
const SEED_BATCH = 10_000;

/** Realistic shape: a year by default, runbooks and legal documents sooner, templates never. */
const POLICY: FreshnessPolicy = {
  maxAgeDays: 365,
  rules: [
    { match: { pathGlob: '**/*template*' }, maxAgeDays: null },
    { match: { pathGlob: 'runbooks/**' }, maxAgeDays: 180 },
    { match: { label: 'legal' }, maxAgeDays: 90 },
    { match: { titleRegex: '^draft\\b' }, maxAgeDays: 30 },
  ],
};

/** A real store: Postgres in a throw-away schema when DATABASE_URL is set, else PGlite in a temp dir. */
async function openStore(tmp: string): Promise<{ driver: SqlDriver; stores: Stores; label: string; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const schema = `clr_bench_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const driver = new PgDriver({ connectionString: url, schema, max: 4 });
    return {
      driver, stores: sqlStores(driver), label: `postgres (schema ${schema})`,
      drop: async () => { await admin.query(`DROP SCHEMA ${schema} CASCADE`); await admin.end(); },
    };
  }
  const dir = path.join(tmp, 'pglite');
  const driver = await PgliteDriver.open({ dataDir: dir });
  return { driver, stores: sqlStores(driver), label: `pglite (${dir})`, drop: async () => {} };
}

/**
 * Seeds documents with ages spread over ~3 years (uniform, from a hash of the index so runs are
 * comparable), folders that exercise each rule, owners and ACLs of realistic size.
 */
/** Bulk-seeded in SQL: a benchmark of 100k documents cannot wait for the indexer to write them. */
async function seed(driver: SqlDriver, sourceId: string, docs: number, now: Date) {
  for (let start = 0; start < docs; start += SEED_BATCH) {
    const end = Math.min(docs, start + SEED_BATCH) - 1;
    await driver.query(
      `INSERT INTO documents (id, source_id, external_id, title, url, path, mime_type, owner, labels, last_modified,
                              acl_hash, acl, generation, chunk_count, status, last_seen_run)
       SELECT md5($1 || ':' || g), $1, 'doc-' || g,
              CASE WHEN g % 50 = 0 THEN 'Draft ' ELSE 'Document ' END || g,
              'https://docs.example.test/' || g,
              (ARRAY['policies', 'runbooks', 'templates', 'finance', 'engineering', 'legal'])[1 + g % 6] || '/team-' || (g % 97) ||
                CASE WHEN g % 6 = 2 THEN '/offer-template-' ELSE '/doc-' END || g || '.md',
              'text/markdown', 'owner' || (g % 500) || '@example.test',
              CASE WHEN g % 6 = 5 THEN ARRAY['legal'] ELSE ARRAY[]::text[] END,
              $2::timestamptz - ((('x' || substr(md5(g::text), 1, 8))::bit(32)::bigint % 1100) * interval '1 day'),
              'acl', ARRAY['group:team-' || (g % 97), 'user:owner' || (g % 500) || '@example.test'], 1, 4, 'indexed', 'seed'
       FROM generate_series($3::int, $4::int) g`,
      [sourceId, now.toISOString(), start, end],
    );
  }
}

function sampler() {
  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  sample();
  const timer = setInterval(sample, 10);
  return { stop: () => { clearInterval(timer); sample(); return { peakRss, peakHeap }; } };
}

async function pass(stores: Stores, sourceId: string, now: Date) {
  const t0 = performance.now();
  const result = await evaluateSource({ ctx: { ...stores, now: () => now }, sourceId });
  return { result, seconds: (performance.now() - t0) / 1000 };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * `npx clearance bench freshness --docs N`: evaluation rate of N documents against a policy with
 * rules, and the memory it takes. Three passes: the first opens every alert, the second finds
 * nothing changed, the third (a day later) rewrites the age of every open alert.
 */
export async function benchFreshness({ docs }: { docs: number }) {
  if (!Number.isInteger(docs) || docs < 1) throw new Error('--docs must be a positive integer');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-freshness-'));
  const { driver, stores, label, drop } = await openStore(tmp);
  const store = stores.metadata;
  try {
    await store.migrate();
    const source = await store.sources.create({ name: 'bench', type: 'filesystem', config: { path: '/bench' }, credentialsEncrypted: null, schedule: null, freshness: POLICY });
    const now = new Date();
    console.log(`metadata: ${label}`);
    const t0 = performance.now();
    await seed(driver, source.id, docs, now);
    console.log(`seeded ${fmt(await store.documents.count(source.id))} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s (page size ${PAGE_SIZE})`);

    // What autovacuum would have done by now on a real database; without statistics the planner
    // treats the freshly filled tables as empty.
    await driver.query('ANALYZE documents');
    collectGarbage();
    const base = process.memoryUsage();
    const mem = sampler();
    const passes: [string, { result: SourceEvaluation; seconds: number }][] = [];
    passes.push(['first pass (opens alerts)', await pass(stores, source.id, now)]);
    await driver.query('ANALYZE alerts');
    passes.push(['second pass (nothing changed)', await pass(stores, source.id, now)]);
    passes.push(['a day later (every age moves)', await pass(stores, source.id, new Date(now.getTime() + DAY))]);
    const { peakRss, peakHeap } = mem.stop();
    collectGarbage();
    const heapAfter = process.memoryUsage().heapUsed;

    for (const [name, { result: r, seconds }] of passes) {
      console.log(`${name.padEnd(32)} ${fmt(r.documents)} docs in ${seconds.toFixed(1)} s → ${fmt(r.documents / seconds)} docs/s` +
        `  (stale ${fmt(r.stale)}, exempt ${fmt(r.exempt)}, opened ${fmt(r.opened)}, resolved ${fmt(r.resolved)})`);
    }
    console.log(`peak RSS ${fmt(peakRss / MB)} MB (+${fmt((peakRss - base.rss) / MB)} MB over ${fmt(base.rss / MB)} MB after seeding` +
      `${driver.kind === 'pglite' ? ', most of it the embedded database' : ''})`);
    console.log(`JS heap: ${fmt(base.heapUsed / MB)} MB before, peak ${fmt(peakHeap / MB)} MB (+${fmt((peakHeap - base.heapUsed) / MB)} MB), ` +
      `${((heapAfter - base.heapUsed) / MB).toFixed(1)} MB retained after the passes`);
  } finally {
    await store.close();
    await drop();
    await rm(tmp, { recursive: true, force: true });
  }
}

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mintDevToken } from '../identity/dev.ts';
import { closeServices } from '../services.ts';
import { LanceDbVectorStore } from '../vectorstore/lancedb.ts';
import { benchModelEnv, paragraph, rng } from './corpus.ts';
import { benchServices } from './harness.ts';
import type { LoadPlan, LoadRuns } from './load-driver.ts';
import { seedSyntheticIndex } from './seed.ts';

const GROUPS = 50;
const USERS = 200;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The load generator, as a fresh process of its own (why: src/bench/load-driver.ts). */
async function driveInOwnProcess(plan: LoadPlan): Promise<LoadRuns> {
  const driver = fork(path.resolve(import.meta.dirname, 'load-driver.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    return await new Promise<LoadRuns>((resolve, reject) => {
      driver.once('message', (m: { rows?: LoadRuns; error?: string }) => (m.rows ? resolve(m.rows) : reject(new Error(`the load generator failed: ${m.error}`))));
      driver.once('exit', (code) => reject(new Error(`the load generator exited (${code}) before reporting`)));
      driver.once('error', reject);
      driver.send(plan);
    });
  } finally {
    if (driver.exitCode === null) driver.kill();
  }
}

/**
 * `npx clearance bench load --concurrency 50`: the HTTP search API under many assistants at once.
 * An index of `chunks` synthetic chunks is seeded, the service is started as its own process
 * (`clearance api`, embedded stores, the real query embedder), and a third process drives it with
 * `USERS` different identities (the three runs: driveLoad).
 */
export async function benchLoad(opts: { chunks: number; concurrency: number; seconds: number; single: number }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-load-'));
  const dataDir = path.join(tmp, 'data');
  let child: ChildProcess | undefined;
  try {
    const t0 = performance.now();
    const s = await benchServices(tmp);
    const model = s.embedder.modelId;
    process.stdout.write(`seeding ${opts.chunks} chunks (${s.vectors.kind}, ${s.metadata.kind}, model ${model})…`);
    await seedSyntheticIndex(s, { chunks: opts.chunks, groups: GROUPS, onProgress: (n) => { if (n % 20_000 === 0) process.stdout.write(` ${n}`); } });
    process.stdout.write(` done in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    // The API process only reads, so it never starts index work: finish what the seeding writes began.
    if (s.vectors instanceof LanceDbVectorStore) {
      const t1 = performance.now();
      const { built } = await s.vectors.buildIndexes();
      const status = await s.vectors.indexStatus();
      console.log(`indexes brought up to date in ${((performance.now() - t1) / 1000).toFixed(1)} s (${built?.actions.length ?? 0} built now): ` +
        `vector ${status.vector.map((v) => v.name).join(', ') || 'none'}, scalar ${[...status.scalar].sort().join(', ')}, ${status.unindexedRows} rows unindexed`);
    }
    await closeServices(s);

    const port = await freePort();
    const env = {
      ...process.env, ...benchModelEnv(), CLEARANCE_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', AUTH_MODE: 'dev',
      LOG_LEVEL: 'warn', SEARCH_RATE_LIMIT: '0', REDIS_URL: '', DATABASE_URL: '', QDRANT_URL: '', FILESYSTEM_ROOTS: tmp,
    };
    child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/clearance.mjs'), 'api'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the service exited: ${stderr.slice(-500)}`);
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      if (i > 600) throw new Error('the service did not become ready within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    const r = rng(3);
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, u) => mintDevToken({
      email: `user${u}@acme.test`, groups: [`g${u % GROUPS}`, `g${(u * 7 + 3) % GROUPS}`], dataDir, expiresIn: '2h',
    })));
    const queries = Array.from({ length: 500 }, () => paragraph(r, 8));
    const plan: LoadPlan = { base, tokens, queries, concurrency: opts.concurrency, seconds: opts.seconds, single: opts.single };
    const [single, closed, open] = await driveInOwnProcess(plan);
    console.log('');
    console.log(`index: ${opts.chunks} synthetic chunks, ${GROUPS} groups, ${USERS} caller identities; service: clearance api (embedded stores), ${os.cpus().length} cores shared with the load generator`);
    const rows = [single, closed, open];
    console.log(['run'.padEnd(34), 'requests', 'errors', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms'].join('  '));
    for (const x of rows) {
      console.log([x.label.padEnd(34), String(x.requests).padStart(8), String(x.errors).padStart(6), x.throughput.toFixed(1).padStart(5),
        x.p50.toFixed(1).padStart(6), x.p95.toFixed(1).padStart(6), x.p99.toFixed(1).padStart(6)].join('  '));
    }
    console.log(`saturated throughput / single-caller rate: ${(closed.throughput / single.throughput).toFixed(2)}×; ` +
      `open-loop p99 / single-caller p99: ${(open.p99 / single.p99).toFixed(2)}×`);
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((res) => child!.once('exit', res));
    }
    await rm(tmp, { recursive: true, force: true });
  }
}

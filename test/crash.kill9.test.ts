import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPermissionFilter } from '../src/access/index.ts';
import { loadConfig } from '../src/config.ts';
import type { Embedder } from '../src/embedder/interface.ts';
import { LocalEmbedder } from '../src/embedder/local.ts';
import { BullMqJobRunner } from '../src/jobs/bullmq.ts';
import { openStores } from '../src/metadata/index.ts';
import type { MetadataStore } from '../src/metadata/interface.ts';
import type { Run } from '../src/types.ts';
import type { VectorStore } from '../src/vectorstore/interface.ts';
import { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';
import { MemoryVectorStore } from '../src/vectorstore/memory.ts';
import { rng } from '../src/bench/corpus.ts';
import { FakeEmbedder } from './fakes/embedder.ts';
import { createHarness, syncNow } from './support/harness.ts';
import { modelAvailable, modelPath, PG_URL, postgresReachable, REDIS_URL, redisReachable } from './support/services.ts';
import { waitFor } from './support/scripted-connector.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const FOLDERS = 6;
const FILES = 600;
const KILLS = 3;

async function reachable(): Promise<boolean> {
  return (await postgresReachable()) && (await redisReachable()) && modelAvailable();
}

const WORDS = 'ledger invoice rollout incident vendor budget access review policy escalation backup runbook audit quarter forecast payroll'.split(' ');
let clock = Date.now() - 86_400_000;

describe.runIf(await reachable())('kill -9 during a sync (BullMQ worker process, Postgres, LanceDB)', () => {
  // Kill timing and corpus edits are random; KILL9_SEED replays a failing run.
  const seed = Number(process.env.KILL9_SEED ?? Date.now() % 100_000);
  const r = rng(seed);
  let tmp: string;
  let corpus: string;
  let dataDir: string;
  let schema: string;
  let prefix: string;
  let env: Record<string, string>;
  let metadata: MetadataStore;
  let runner: BullMqJobRunner;
  let model: LocalEmbedder;
  let sourceId: string;
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const admin = new pg.Client({ connectionString: PG_URL });

  async function writeDoc(rel: string, version = 0) {
    const file = path.join(corpus, rel);
    await mkdir(path.dirname(file), { recursive: true });
    const n = 30 + Math.floor(r() * 60);
    const body = Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ');
    await writeFile(file, `# ${path.basename(rel, '.md')} v${version}\n\n${body}.\n`);
    clock += 1_000;
    await utimes(file, new Date(clock), new Date(clock));
  }
  const setAcl = (folder: string, read: string[]) => writeFile(path.join(corpus, folder, '.clearance-acl.json'), JSON.stringify({ read }));

  async function files(): Promise<string[]> {
    const out: string[] = [];
    for (const f of (await readdir(corpus, { withFileTypes: true })).filter((e) => e.isDirectory())) {
      for (const e of await readdir(path.join(corpus, f.name))) if (!e.startsWith('.')) out.push(`${f.name}/${e}`);
    }
    return out.sort();
  }
  const pick = async (n: number) => (await files()).sort(() => r() - 0.5).slice(0, n);

  // The production entry point, as `npx clearance worker` starts it.
  function startWorker(): ChildProcess {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/clearance.mjs'), 'worker'], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d) => logs.push(String(d)));
    children.push(child);
    return child;
  }
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
      : new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-kill9-'));
    corpus = path.join(tmp, 'corpus');
    dataDir = path.join(tmp, 'data');
    schema = `clr_kill_${randomBytes(5).toString('hex')}`;
    prefix = `clearance-kill-${randomBytes(4).toString('hex')}`;
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    env = {
      DATABASE_URL: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      JOB_LOCK_SECONDS: '2',
      SYNC_CONCURRENCY: '1',
      LOCAL_MODEL_PATH: modelPath(),
      EMBEDDING_BATCH_SIZE: '64',
      CLEARANCE_DATA_DIR: dataDir,
      FILESYSTEM_ROOTS: corpus,
      CLEARANCE_SECRET_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'warn',
    };
    for (let f = 0; f < FOLDERS; f++) {
      await mkdir(path.join(corpus, `team-${f}`), { recursive: true });
      await setAcl(`team-${f}`, [`group:team-${f}`, `user:lead${f}@acme.test`]);
    }
    for (let i = 0; i < FILES; i++) await writeDoc(`team-${i % FOLDERS}/doc-${String(i).padStart(4, '0')}.md`);

    const config = loadConfig({ ...env });
    metadata = (await openStores(config)).metadata;
    runner = new BullMqJobRunner({ config, log: pino({ level: 'silent' }), metadata });
    model = await LocalEmbedder.create({ modelPath: modelPath() });
    const source = await metadata.sources.create({ name: 'kill9', type: 'filesystem', config: { path: corpus }, credentialsEncrypted: null, schedule: null, freshness: null });
    sourceId = source.id;
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await runner?.close();
    await model?.close();
    await metadata?.close();
    const redis = new Redis(REDIS_URL);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
    await rm(tmp, { recursive: true, force: true });
  });

  const runOf = (id: string) => metadata.runs.get(id) as Promise<Run>;

  it('ends with the same index as a clean sync after repeated SIGKILLs, edits and deletions', async () => {
    let { runId } = await runner.enqueueSync(sourceId, undefined);
    const kills: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const child = startWorker();
      // First kill: a random moment early in the run; later ones once the resumed run has got
      // through a random number of pages (100 files each), then a random delay into the next page.
      const pages = k === 0 ? 0 : 1 + Math.floor(r() * 3);
      await waitFor(async () => {
        const run = await runOf(runId);
        return (run.status === 'running' && run.stats.seen >= pages * 100) || run.status === 'succeeded' || run.status === 'failed' || child.exitCode !== null;
      }, `the worker to get ${pages} pages into the run`, 45_000, 25);
      await new Promise((res) => setTimeout(res, 100 + Math.floor(r() * 700)));
      const before = await runOf(runId);
      child.kill('SIGKILL');
      expect((await exited(child)).signal).toBe('SIGKILL');
      kills.push(`${before.status} after ${before.stats.seen} seen (waited for ${pages} pages)`);

      // The world moves on while no worker runs: edits, deletions, additions, a permission change.
      for (const rel of await pick(8)) await rm(path.join(corpus, rel));
      for (const rel of await pick(8)) await writeDoc(rel, k + 1);
      for (let i = 0; i < 4; i++) await writeDoc(`team-${k % FOLDERS}/new-${k}-${i}.md`, k + 1);
      if (k === 1) await setAcl('team-2', ['group:team-2-reorg']);
      // The interrupted run is still the source's run (running, as the dead worker left it)
      // unless it had already finished; then this starts the next one.
      ({ runId } = await runner.enqueueSync(sourceId, undefined));
    }

    const child = startWorker();
    const last = await waitFor(async () => {
      const run = await runOf(runId);
      return run.status === 'succeeded' || run.status === 'failed' ? run : null;
    }, 'the resumed run to finish', 60_000, 200);
    expect(last.status, `seed ${seed}: ${logs.join('')}`).toBe('succeeded');
    // Catch whatever changed after that run passed by the file, with a graceful stop at the end.
    const final = await runner.enqueueSync(sourceId, undefined);
    const settled = await waitFor(async () => {
      const run = await runOf(final.runId);
      return run.status === 'succeeded' || run.status === 'failed' ? run : null;
    }, 'a last run', 60_000, 200);
    expect(settled.status, `seed ${seed}: ${logs.join('')}`).toBe('succeeded');
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(await metadata.runs.active(sourceId)).toBeNull();

    // The crashed store, read after the worker is gone.
    const vectors = new LanceDbVectorStore({ dir: path.join(dataDir, 'lancedb') });
    await vectors.init(model.dimension);
    const crashed = await snapshot(metadata, vectors, sourceId, model.dimension);
    await vectors.close();

    // A clean full sync of the same folder into fresh stores.
    const clean = await cleanSync(corpus, model);

    const expectedFiles = await files();
    expect(crashed.registry.map((d) => d.externalId)).toEqual(expectedFiles);
    expect(clean.registry.map((d) => d.externalId)).toEqual(expectedFiles);
    for (const d of crashed.registry) expect(d.status, d.externalId).toBe('indexed');
    // No duplicate or orphan chunks: every document has exactly its registry's chunks.
    for (const d of crashed.registry) expect(d.vectorCount, d.externalId).toBe(d.chunkCount);
    expect(crashed.registry.map((d) => [d.externalId, d.chunkCount, d.acl])).toEqual(clean.registry.map((d) => [d.externalId, d.chunkCount, d.acl]));
    expect(crashed.chunks.length).toBe(clean.chunks.length);
    expect(crashed.chunks, `seed ${seed}, kills: ${kills.join('; ')}`).toEqual(clean.chunks);
    expect(kills).toHaveLength(KILLS);
  }, 300_000);
});

interface Snapshot {
  registry: { externalId: string; status: string; chunkCount: number; vectorCount: number; acl: string }[];
  /** Every chunk in the vector store as "externalId | acl | text", sorted (duplicates kept). */
  chunks: string[];
}

const ALL_PRINCIPALS = [
  ...Array.from({ length: FOLDERS }, (_, f) => [`group:team-${f}`, `user:lead${f}@acme.test`]).flat(),
  'group:team-2-reorg', 'everyone',
];

async function snapshot(metadata: MetadataStore, vectors: VectorStore, sourceId: string, dimension: number): Promise<Snapshot> {
  const docs = await metadata.documents.list({ sourceId, limit: 100_000 });
  const byId = new Map(docs.map((d) => [d.id, d.externalId]));
  const registry = await Promise.all(docs.map(async (d) => ({
    externalId: d.externalId, status: d.status, chunkCount: d.chunkCount, vectorCount: await vectors.count({ documentId: d.id }), acl: d.acl.join(','),
  })));
  registry.sort((a, b) => a.externalId.localeCompare(b.externalId));
  const total = await vectors.count({ sourceId });
  const query = new FakeEmbedder({ dimension }).vector('anything');
  const hits = await vectors.search(query, buildPermissionFilter({ principals: ALL_PRINCIPALS, requestedSourceIds: [sourceId] }), total + 100);
  expect(hits).toHaveLength(total);
  const chunks = hits.map((h) => `${byId.get(h.point.documentId) ?? `orphan:${h.point.documentId}`} | ${h.point.acl.join(',')} | ${h.point.text}`).sort();
  return { registry, chunks };
}

/**
 * The same folder synced once, cleanly, into fresh in-memory stores. Chunk boundaries depend on the
 * model's tokenizer, so the clean sync counts tokens with the same model; its vectors need not be
 * real (the snapshot compares texts and ACLs), so embedding is a fast fake.
 */
async function cleanSync(corpus: string, model: LocalEmbedder): Promise<Snapshot> {
  const fake = new FakeEmbedder({ dimension: model.dimension, maxTokens: model.maxTokens });
  const embedder: Embedder = {
    modelId: 'kill9-clean', dimension: model.dimension, maxTokens: model.maxTokens,
    countTokens: (t) => model.countTokens(t), embed: (texts) => fake.embed(texts),
  };
  const h = await createHarness({ embedder, vectors: new MemoryVectorStore() });
  try {
    const source = await h.metadata.sources.create({ name: 'clean', type: 'filesystem', config: { path: corpus }, credentialsEncrypted: null, schedule: null, freshness: null });
    expect((await syncNow(h, source.id, 'full')).status).toBe('succeeded');
    return await snapshot(h.metadata, h.vectors, source.id, model.dimension);
  } finally {
    await h.cleanup();
  }
}

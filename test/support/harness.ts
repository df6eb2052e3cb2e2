import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import type { RequestContext, Services } from '../../src/context.ts';
import type { Embedder } from '../../src/embedder/interface.ts';
import { FakeEmbedder } from '../../src/embedder/fake.ts';
import { InProcessJobRunner } from '../../src/jobs/in-process.ts';
import { createMemoryMetadataStore } from '../../src/metadata/index.ts';
import type { MetadataStore } from '../../src/metadata/interface.ts';
import type { Caller } from '../../src/types.ts';
import type { VectorStore } from '../../src/vectorstore/interface.ts';
import { MemoryVectorStore } from '../../src/vectorstore/memory.ts';

export const SHARED_MODEL = path.resolve(import.meta.dirname, '../../../shared/models/universal-sentence-encoder-lite');

export interface Harness extends Services {
  jobs: InProcessJobRunner;
  dir: string;
  cleanup(): Promise<void>;
}

/** Services on fakes and temp dirs: in-memory PGlite, in-memory vectors, a deterministic embedder. */
export async function createHarness(opts: {
  env?: Record<string, string>;
  metadata?: MetadataStore;
  vectors?: VectorStore;
  embedder?: Embedder;
} = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clearance-test-'));
  const config: Config = loadConfig({ CLEARANCE_DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'silent', ...opts.env });
  const metadata = opts.metadata ?? (await createMemoryMetadataStore());
  const embedder = opts.embedder ?? new FakeEmbedder({ dimension: 64, maxTokens: 128 });
  const vectors = opts.vectors ?? new MemoryVectorStore();
  await vectors.init(embedder.dimension);
  const h = {
    config, metadata, vectors, embedder, dir,
    log: pino({ level: 'silent' }),
    secretKey: randomBytes(32),
    now: () => new Date(),
  } as Harness;
  h.jobs = new InProcessJobRunner(() => h);
  h.cleanup = async () => {
    await h.jobs.close();
    await vectors.close();
    if (!opts.metadata) await metadata.close();
    await rm(dir, { recursive: true, force: true });
  };
  return h;
}

export function userCtx(services: Services, email: string, groups: string[] = []): RequestContext {
  const caller: Caller = { kind: 'user', email: email.toLowerCase(), groups, isAdmin: false, isCompliance: false };
  return { ...services, caller, requestId: randomBytes(4).toString('hex') };
}

export function adminCtx(services: Services): RequestContext {
  return { ...services, caller: { kind: 'admin-token', email: null, groups: [], isAdmin: true, isCompliance: true }, requestId: 'admin' };
}

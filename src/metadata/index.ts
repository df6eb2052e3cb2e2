import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { errorMessage } from '../errors.ts';
import type { MetadataStore } from './interface.ts';
import { migrations } from './migrations.ts';
import { PgDriver } from './pg.ts';
import { PgliteDriver } from './pglite.ts';
import { SqlMetadataStore } from './store.ts';

export { SqlMetadataStore } from './store.ts';
export { PgDriver } from './pg.ts';
export { PgliteDriver } from './pglite.ts';
export { migrate, migrations } from './migrations.ts';
export type * from './interface.ts';

/** The URL without its password, for messages. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the configured server';
  }
}

function connectionReason(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: unknown[] };
  // AggregateError from connecting to several resolved addresses carries no message of its own.
  if (!e?.message && Array.isArray(e?.errors) && e.errors.length > 0) return connectionReason(e.errors[0]);
  const msg = errorMessage(err).split('\n')[0]!;
  return e?.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg || String(e?.code ?? 'unknown error');
}

/**
 * DATABASE_URL set → Postgres, otherwise embedded PGlite under `<dataDir>/pglite`; migrated either
 * way. A store that cannot be reached fails with a ConfigError whose message is one line naming
 * the variable to fix.
 */
export async function createMetadataStore(config: Pick<Config, 'DATABASE_URL' | 'dataDir'>): Promise<MetadataStore> {
  if (config.DATABASE_URL) {
    const driver = new PgDriver({ connectionString: config.DATABASE_URL });
    const store = new SqlMetadataStore(driver);
    try {
      await store.ping();
    } catch (err) {
      await driver.close().catch(() => {});
      throw new ConfigError(`DATABASE_URL: cannot connect to Postgres at ${describeUrl(config.DATABASE_URL)}: ${connectionReason(err)}`);
    }
    try {
      await store.migrate();
    } catch (err) {
      await driver.close().catch(() => {});
      throw new ConfigError(`DATABASE_URL: migrating the metadata database failed: ${connectionReason(err)}`);
    }
    return store;
  }

  const dir = path.join(config.dataDir, 'pglite');
  let driver: PgliteDriver;
  try {
    await fs.mkdir(dir, { recursive: true });
    driver = await PgliteDriver.open({ dataDir: dir });
  } catch (err) {
    throw new ConfigError(`CLEARANCE_DATA_DIR: cannot open the embedded database in ${dir}: ${connectionReason(err)}`);
  }
  const store = new SqlMetadataStore(driver);
  try {
    await store.migrate();
  } catch (err) {
    await driver.close().catch(() => {});
    throw new ConfigError(`CLEARANCE_DATA_DIR: migrating the embedded database in ${dir} failed: ${connectionReason(err)}`);
  }
  return store;
}

// ---- In-memory store for tests -------------------------------------------------------------------

/**
 * initdb inside PGlite takes seconds; loading a dump of an already-migrated database takes well
 * under one. The dump is kept per process and also cached on disk (keyed by the migrations), so
 * each test file pays initdb at most once per machine.
 */
let template: Promise<Blob> | null = null;

function templateCachePath(): string {
  const h = createHash('sha256').update(JSON.stringify(migrations));
  // A dump is only valid for the PGlite build that wrote it.
  try {
    const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    const st = statSync(entry);
    h.update(`${entry}:${st.size}:${st.mtimeMs}`);
  } catch { /* key on the migrations alone */ }
  return path.join(os.tmpdir(), `clearance-pglite-template-${h.digest('hex').slice(0, 16)}.tar`);
}

async function buildTemplate(): Promise<Blob> {
  const file = templateCachePath();
  try {
    return new Blob([await fs.readFile(file)]);
  } catch { /* not cached yet */ }
  const driver = await PgliteDriver.open();
  try {
    await new SqlMetadataStore(driver).migrate();
    const dump = await driver.dump();
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await fs.writeFile(tmp, Buffer.from(await dump.arrayBuffer()));
      await fs.rename(tmp, file);
    } catch {
      await fs.rm(tmp, { force: true }).catch(() => {});
    }
    return dump;
  } finally {
    await driver.close();
  }
}

/** A fresh, migrated, empty in-memory store (embedded PGlite). Close it when done. */
export async function createMemoryMetadataStore(): Promise<MetadataStore> {
  template ??= buildTemplate();
  const dump = await template;
  let driver: PgliteDriver;
  try {
    driver = await PgliteDriver.open({ loadDataDir: dump });
  } catch {
    // A damaged cache file: rebuild from scratch once.
    await fs.rm(templateCachePath(), { force: true }).catch(() => {});
    template = buildTemplate();
    driver = await PgliteDriver.open({ loadDataDir: await template });
  }
  const store = new SqlMetadataStore(driver);
  // Cheap (the dump is already migrated), and covers a cache file from an older migration list.
  await store.migrate();
  return store;
}

import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { migrations } from '../../src/metadata/migrations.ts';
import { PgliteDriver } from '../../src/metadata/pglite.ts';
import { SqlMetadataStore, sqlStores, type Stores } from '../../src/metadata/store.ts';

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

/** A fresh, migrated, empty in-memory PGlite database. Close it when done. */
export async function memoryDriver(): Promise<PgliteDriver> {
  template ??= buildTemplate();
  let driver: PgliteDriver;
  try {
    driver = await PgliteDriver.open({ loadDataDir: await template });
  } catch {
    // A damaged cache file: rebuild from scratch once.
    await fs.rm(templateCachePath(), { force: true }).catch(() => {});
    template = buildTemplate();
    driver = await PgliteDriver.open({ loadDataDir: await template });
  }
  // Cheap (the dump is already migrated), and covers a cache file from an older migration list.
  await new SqlMetadataStore(driver).migrate();
  return driver;
}

/** Fresh, migrated, empty in-memory stores (metadata and alerts share one PGlite). Close `metadata` when done. */
export async function createMemoryStores(): Promise<Stores> {
  return sqlStores(await memoryDriver());
}

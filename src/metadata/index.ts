import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { errorMessage } from '../errors.ts';
import { migrations } from './migrations.ts';
import { PgDriver } from './pg.ts';
import { PgliteDriver } from './pglite.ts';
import { sqlStores, type Stores } from './store.ts';

export { SqlMetadataStore, sqlStores, type Stores } from './store.ts';
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
export async function openStores(config: Pick<Config, 'DATABASE_URL' | 'dataDir'>): Promise<Stores> {
  if (config.DATABASE_URL) {
    const driver = new PgDriver({ connectionString: config.DATABASE_URL });
    const stores = sqlStores(driver);
    try {
      await stores.metadata.ping();
    } catch (err) {
      await driver.close().catch(() => {});
      throw new ConfigError(`DATABASE_URL: cannot connect to Postgres at ${describeUrl(config.DATABASE_URL)}: ${connectionReason(err)}`);
    }
    try {
      await stores.metadata.migrate();
    } catch (err) {
      await driver.close().catch(() => {});
      throw new ConfigError(`DATABASE_URL: migrating the metadata database failed: ${connectionReason(err)}`);
    }
    return stores;
  }

  const dir = path.join(config.dataDir, 'pglite');
  let driver: PgliteDriver;
  try {
    await fs.mkdir(dir, { recursive: true });
    driver = await PgliteDriver.open({ dataDir: dir });
  } catch (err) {
    throw new ConfigError(`CLEARANCE_DATA_DIR: cannot open the embedded database in ${dir}: ${connectionReason(err)}`);
  }
  const stores = sqlStores(driver);
  try {
    await stores.metadata.migrate();
  } catch (err) {
    await driver.close().catch(() => {});
    throw new ConfigError(`CLEARANCE_DATA_DIR: migrating the embedded database in ${dir} failed: ${connectionReason(err)}`);
  }
  return stores;
}

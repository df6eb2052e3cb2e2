import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { SqlDriver } from './interface.ts';

type Runner = Pick<Transaction, 'query' | 'exec'>;

/**
 * Parameterless text goes through `exec` (simple protocol), which accepts several statements the
 * way node-postgres does, so migrations are written once for both drivers.
 */
async function run<T>(db: Runner, text: string, params?: unknown[]): Promise<T[]> {
  if (params && params.length > 0) return (await db.query<T>(text, params)).rows;
  const results = await db.exec(text);
  return (results[results.length - 1]?.rows ?? []) as T[];
}

/** FIFO lock: PGlite is one connection, so a query must never slip into someone else's transaction. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

class PgliteTx implements SqlDriver {
  readonly kind = 'pglite' as const;
  private savepoint = 0;
  constructor(private readonly tx: Transaction) {}

  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]> {
    return run<T>(this.tx, text, params);
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const name = `sp_${++this.savepoint}`;
    await this.tx.exec(`SAVEPOINT ${name}`);
    try {
      const out = await fn(this);
      await this.tx.exec(`RELEASE SAVEPOINT ${name}`);
      return out;
    } catch (err) {
      await this.tx.exec(`ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }

  close(): Promise<void> {
    throw new Error('close() is not available inside a transaction');
  }
}

export interface PgliteDriverOptions {
  /** Directory for the database files; omitted → in memory. */
  dataDir?: string;
  /** A `dumpDataDir()` tarball to start from instead of running initdb (much faster). */
  loadDataDir?: Blob | File;
}

const BYTEA = 17;

/**
 * `bytea` arrives as hex text. PGlite's own parser reads it one `parseInt` per byte, on the thread
 * that serves requests and syncs: reading 1,248 rows of 1 KB took 104 ms with it and 10.5 ms here,
 * and each vector a sync takes from the embedding cache is 2 KB.
 */
function byteaFromHex(text: string): Uint8Array {
  // A copy of its own, so no value shares (and pins) Buffer's pool.
  return new Uint8Array(Buffer.from(text.slice(2), 'hex'));
}

function byteaToHex(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new TypeError('a bytea parameter must be a Uint8Array');
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
}

export class PgliteDriver implements SqlDriver {
  readonly kind = 'pglite' as const;
  private readonly lock = new Mutex();
  private closed = false;

  private constructor(readonly db: PGlite) {}

  static async open(opts: PgliteDriverOptions = {}): Promise<PgliteDriver> {
    const db = await PGlite.create({
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
      ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
      parsers: { [BYTEA]: byteaFromHex },
      serializers: { [BYTEA]: byteaToHex },
    });
    // Each new 16 MB WAL segment was written full of zeros first, on this thread: a 25-60 ms stall
    // every few thousand searches (their audit records are most of the WAL). Zero-filling only
    // claims the disk space up front; off writes the segment's last byte instead (PostgreSQL's
    // documented setting for filesystems that gain nothing from it). A session setting, and PGlite
    // is one session.
    await db.exec('SET wal_init_zero = off');
    return new PgliteDriver(db);
  }

  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]> {
    return this.lock.run(() => run<T>(this.db, text, params));
  }

  /**
   * PGlite reads COPY … FROM '/dev/blob' from the query's `blob` option. Not offered inside a
   * transaction, where a copy that fails on a duplicate would leave the transaction aborted for the
   * caller's fallback.
   */
  copyBinary(table: string, columns: string[], data: Uint8Array<ArrayBuffer>): Promise<void> {
    return this.lock.run(async () => {
      await this.db.query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT binary)`, [], { blob: new Blob([data]) });
    });
  }

  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    return this.lock.run(() => this.db.transaction((tx) => fn(new PgliteTx(tx))));
  }

  /** A copy of the whole database, to seed other instances via `loadDataDir`. */
  dump(): Promise<Blob | File> {
    return this.lock.run(() => this.db.dumpDataDir('none'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Waits for queued work so closing never cuts a transaction in half.
    await this.lock.run(() => this.db.close());
  }
}

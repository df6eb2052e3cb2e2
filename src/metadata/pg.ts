import pg from 'pg';
import type { SqlDriver } from './interface.ts';

export interface PgDriverOptions {
  connectionString: string;
  /** Every connection gets `search_path` set to this schema (tests use one throw-away schema each). */
  schema?: string;
  max?: number;
  connectionTimeoutMillis?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * Without parameters node-postgres uses the simple protocol, which accepts several statements
 * (migrations rely on that) and returns one result per statement; the last one is what callers want.
 */
async function run<T>(client: Queryable, text: string, params?: unknown[]): Promise<T[]> {
  const res = params && params.length > 0 ? await client.query(text, params) : await client.query(text);
  const last = Array.isArray(res) ? res[res.length - 1] : res;
  return (last?.rows ?? []) as T[];
}

class PgTx implements SqlDriver {
  readonly kind = 'postgres' as const;
  private savepoint = 0;
  constructor(private readonly client: pg.PoolClient) {}

  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]> {
    return run<T>(this.client, text, params);
  }

  /** Nested transactions become savepoints, so an inner failure undoes only the inner work. */
  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const name = `sp_${++this.savepoint}`;
    await this.client.query(`SAVEPOINT ${name}`);
    try {
      const out = await fn(this);
      await this.client.query(`RELEASE SAVEPOINT ${name}`);
      return out;
    } catch (err) {
      await this.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }

  close(): Promise<void> {
    throw new Error('close() is not available inside a transaction');
  }
}

export class PgDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly schema?: string;

  constructor(opts: PgDriverOptions) {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
      throw new Error(`Invalid schema name: ${opts.schema}`);
    }
    this.schema = opts.schema;
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000,
      // A startup parameter rather than a SET after connect: it is in force before the first query.
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // An idle client dropped by the server emits 'error' on the pool; unhandled, it would kill the
    // process. The pool discards that client and the next query gets a fresh one.
    this.pool.on('error', () => {});
  }

  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]> {
    return run<T>(this.pool, text, params);
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const out = await fn(new PgTx(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          // The connection itself failed; it must not go back into the pool.
          broken = true;
        }
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

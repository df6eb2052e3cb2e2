import type { SqlDriver } from './interface.ts';

/**
 * Row and statement helpers shared by the SQL adapters of every aggregate. Both drivers already
 * return Date for timestamptz and parsed jsonb; the converters guard the one code path against a
 * driver configured otherwise (e.g. pg type parsers overridden elsewhere in the process).
 */
export type Row = Record<string, unknown>;

/** Keeps statements well under Postgres' 65535-parameter limit and the wire message size sane. */
export const BATCH = 1000;

export function batches<T>(xs: readonly T[], size = BATCH): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

export const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
export const toDateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : toDate(v));
export const toJson = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
export const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
export const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));
export const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

export const isUniqueViolation = (err: unknown, constraint: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505' &&
  ((err as { constraint?: string }).constraint === constraint ||
    String((err as { message?: string }).message ?? '').includes(constraint));

/**
 * Collects `column = $n` assignments for an UPDATE from a patch, skipping undefined fields, so
 * each aggregate's update method is a list of columns rather than hand-numbered parameters.
 */
export class Assignments {
  readonly params: unknown[];
  private readonly sets: string[] = [];
  constructor(...leading: unknown[]) {
    this.params = [...leading];
  }
  set(column: string, value: unknown): this {
    if (value === undefined) return this;
    this.params.push(value);
    this.sets.push(`${column} = $${this.params.length}`);
    return this;
  }
  raw(sql: string): this {
    this.sets.push(sql);
    return this;
  }
  get empty(): boolean {
    return this.sets.length === 0;
  }
  toString(): string {
    return this.sets.join(', ');
  }
}

/** WHERE-clause builder with numbered parameters, for the list/search queries of each aggregate. */
export class Conditions {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];
  add(sql: (param: string) => string, value: unknown): this {
    if (value === undefined) return this;
    this.params.push(value);
    this.parts.push(sql(`$${this.params.length}`));
    return this;
  }
  raw(sql: string): this {
    this.parts.push(sql);
    return this;
  }
  /** The next parameter's placeholder after pushing `value` (LIMIT, OFFSET). */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
  where(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}

/** The aggregates share one driver; each gets it through this base so transactions can be threaded. */
export abstract class SqlAggregate {
  constructor(protected readonly db: SqlDriver) {}
}

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * Rows in PostgreSQL's binary COPY format: the signature, flags and header extension, then per row
 * its field count and each field as a length and bytes (-1 for NULL), then -1. Strings go as UTF-8,
 * which is the binary form of text; bytes as they are, which is the binary form of bytea.
 */
export function binaryCopyData(rows: ReadonlyArray<ReadonlyArray<string | Uint8Array | null>>): Uint8Array<ArrayBuffer> {
  const fields = rows.map((row) => row.map((f) => (typeof f === 'string' ? Buffer.from(f, 'utf8') : f)));
  let size = COPY_SIGNATURE.length + 8 + 2;
  for (const row of fields) {
    size += 2;
    for (const f of row) size += 4 + (f?.length ?? 0);
  }
  const out = Buffer.allocUnsafe(size);
  let o = COPY_SIGNATURE.copy(out, 0);
  o = out.writeInt32BE(0, o);
  o = out.writeInt32BE(0, o);
  for (const row of fields) {
    o = out.writeInt16BE(row.length, o);
    for (const f of row) {
      if (f === null) {
        o = out.writeInt32BE(-1, o);
        continue;
      }
      o = out.writeInt32BE(f.length, o);
      out.set(f, o);
      o += f.length;
    }
  }
  out.writeInt16BE(-1, o);
  return out;
}

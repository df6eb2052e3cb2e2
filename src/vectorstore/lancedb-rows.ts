import * as arrow from 'apache-arrow';
import type { RankedHit, VectorHit } from './interface.ts';

/**
 * Search results from LanceDB's Arrow batches, column by column. `toArray()` hands back one row
 * proxy per result whose every field access goes through Arrow's type visitor; with two channels
 * of a hundred candidates per hybrid search that conversion was the API's largest main-thread cost
 * under load (`npx clearance bench load`). Here each column is decoded once, straight from its
 * buffers, for the types this table stores; any other type goes through Arrow's own iterator.
 */

export const RESULT_COLUMNS = ['id', 'documentId', 'sourceId', 'generation', 'chunkIndex', 'sectionPath', 'text', 'context', 'lastModified', 'acl'] as const;

type Column = arrow.Vector | null;

/**
 * A Buffer over a chunk's bytes, so each cell decodes by offsets (Buffer#toString) instead of
 * through a new subarray view per cell (a hybrid search allocated 1,275 KB before, 1,169 KB after).
 */
const bytesOf = (values: Uint8Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

function isPlainUtf8(d: arrow.Data): boolean {
  return d.typeId === arrow.Type.Utf8 && d.valueOffsets instanceof Int32Array && d.values instanceof Uint8Array;
}

/** Each cell as a string, or null where the cell is null or the column is absent. */
export function stringColumn(col: Column, rows: number): (string | null)[] {
  const out: (string | null)[] = new Array(rows).fill(null);
  if (!col) return out;
  let row = 0;
  for (const d of col.data) {
    if (!isPlainUtf8(d)) {
      for (let i = 0; i < d.length; i++, row++) {
        const v = col.get(row);
        out[row] = v == null ? null : String(v);
      }
      continue;
    }
    const offsets = d.valueOffsets as Int32Array;
    const bytes = bytesOf(d.values as Uint8Array);
    for (let i = 0; i < d.length; i++, row++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      out[row] = bytes.toString('utf8', offsets[i]!, offsets[i + 1]!);
    }
  }
  return out;
}

/** Each cell of a list-of-strings column as a plain array (null cells and null items dropped, as before). */
export function stringListColumn(col: Column, rows: number): string[][] {
  const out: string[][] = Array.from({ length: rows }, () => []);
  if (!col) return out;
  let row = 0;
  for (const d of col.data) {
    const child = d.children[0];
    if (d.typeId !== arrow.Type.List || !(d.valueOffsets instanceof Int32Array) || !child || !isPlainUtf8(child) || child.offset !== 0) {
      for (let i = 0; i < d.length; i++, row++) {
        const v = col.get(row) as Iterable<unknown> | null;
        out[row] = v == null ? [] : Array.from(v, String);
      }
      continue;
    }
    const listOffsets = d.valueOffsets;
    const offsets = child.valueOffsets as Int32Array;
    const bytes = bytesOf(child.values as Uint8Array);
    for (let i = 0; i < d.length; i++, row++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      const items: string[] = [];
      for (let j = listOffsets[i]!; j < listOffsets[i + 1]!; j++) {
        if (child.nullCount > 0 && !child.getValid(j)) continue;
        items.push(bytes.toString('utf8', offsets[j]!, offsets[j + 1]!));
      }
      out[row] = items;
    }
  }
  return out;
}

/** Each cell as a number (NaN where null or absent). */
export function numberColumn(col: Column, rows: number): number[] {
  const out: number[] = new Array(rows).fill(Number.NaN);
  if (!col) return out;
  let row = 0;
  for (const d of col.data) {
    const values = d.values as ArrayLike<number | bigint> | undefined;
    const plain = (d.typeId === arrow.Type.Float || d.typeId === arrow.Type.Int) && values !== undefined && d.stride === 1;
    for (let i = 0; i < d.length; i++, row++) {
      if (d.nullCount > 0 && !d.getValid(i)) continue;
      out[row] = Number(plain ? values[i]! : col.get(row));
    }
  }
  return out;
}

export const RANKING_COLUMNS = ['id', 'documentId', 'sourceId', 'generation', 'lastModified', 'acl'] as const;

export type ScoreColumn = { distance: true } | { column: '_score' };

/** The ranking fields of each row of a result table, in its row order, with the row's score. */
export function rankedHitsFromArrow(table: arrow.Table, score: ScoreColumn): RankedHit[] {
  const n = table.numRows;
  const col = (name: string): Column => table.getChild(name);
  const [id, documentId, sourceId] = ['id', 'documentId', 'sourceId'].map((c) => stringColumn(col(c), n));
  const [generation, lastModified] = ['generation', 'lastModified'].map((c) => numberColumn(col(c), n));
  const acl = stringListColumn(col('acl'), n);
  const raw = numberColumn(col('distance' in score ? '_distance' : score.column), n);
  const hits: RankedHit[] = new Array(n);
  for (let i = 0; i < n; i++) {
    hits[i] = {
      point: { id: String(id![i]), documentId: String(documentId![i]), sourceId: String(sourceId![i]), generation: generation![i]!, lastModified: lastModified![i]!, acl: acl[i]! },
      // `_distance` is cosine distance; similarity is what callers rank by.
      score: 'distance' in score ? 1 - raw[i]! : raw[i]!,
    };
  }
  return hits;
}

/** Whole hits (every field of RESULT_COLUMNS) of one result table, in its row order. */
export function hitsFromArrow(table: arrow.Table, score: ScoreColumn): VectorHit[] {
  const n = table.numRows;
  const col = (name: string): Column => table.getChild(name);
  const [text, context] = ['text', 'context'].map((c) => stringColumn(col(c), n));
  const chunkIndex = numberColumn(col('chunkIndex'), n);
  const sectionPath = stringListColumn(col('sectionPath'), n);
  return rankedHitsFromArrow(table, score).map((h, i) => {
    const ctx = context![i];
    return {
      point: { ...h.point, chunkIndex: chunkIndex[i]!, sectionPath: sectionPath[i]!, text: String(text![i]), ...(typeof ctx === 'string' ? { context: ctx } : {}) },
      score: h.score,
    };
  });
}

/**
 * Rows to write, as one Arrow table in the table's own schema (field order, types, nullability),
 * built column by column. Handing LanceDB plain objects makes it infer and build every cell
 * through Arrow's builders, vectors number by number; during ingest that was the main thread's
 * largest cost after the registry. Vectors go into one Float32Array here.
 */
export function rowsToArrow(schema: arrow.Schema, rows: readonly Record<string, unknown>[]): arrow.Table | undefined {
  const n = rows.length;
  const children: arrow.Data[] = [];
  for (const field of schema.fields) {
    const type = field.type as arrow.DataType;
    if (arrow.DataType.isFixedSizeList(type) && arrow.DataType.isFloat(type.children[0]!.type) && (type.children[0]!.type as arrow.Float).precision === arrow.Precision.SINGLE) {
      const size = type.listSize;
      const flat = new Float32Array(n * size);
      rows.forEach((r, i) => {
        const v = r[field.name] as ArrayLike<number>;
        if (v.length !== size) throw new RangeError(`${field.name} of row ${i} has ${v.length} dimensions, the table ${size}`);
        flat.set(v, i * size);
      });
      const child = arrow.makeData({ type: type.children[0]!.type as arrow.Float32, length: n * size, data: flat });
      children.push(arrow.makeData({ type, length: n, nullCount: 0, child }));
      continue;
    }
    const values = rows.map((r) => r[field.name] ?? null);
    const direct = arrow.DataType.isUtf8(type) ? utf8Data(type, values) : isStringList(type) ? stringListData(type, values) : undefined;
    if (direct) {
      children.push(direct);
      continue;
    }
    const vector = arrow.vectorFromArray(values, type);
    // Arrow's builder yields one chunk for an array; anything else is left to LanceDB's own conversion.
    if (vector.data.length !== 1) return undefined;
    children.push(vector.data[0]!);
  }
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children });
  return new arrow.Table(schema, [new arrow.RecordBatch(schema, struct)]);
}

/**
 * Strings straight into one UTF-8 buffer and its offsets, which Arrow's builder does a value at a
 * time through its type visitor (most of a page's row-building time on ingest's main thread).
 * Undefined for anything but strings and nulls, which then go through the builder.
 */
function utf8Data(type: arrow.Utf8, values: readonly unknown[]): arrow.Data<arrow.Utf8> | undefined {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  let bytes = 0;
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null) nulls++;
    else if (typeof v === 'string') bytes += Buffer.byteLength(v, 'utf8');
    else return undefined;
    offsets[i + 1] = bytes;
  }
  const data = Buffer.allocUnsafe(bytes);
  const validity = nulls > 0 ? new Uint8Array((n + 7) >> 3) : undefined;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null) continue;
    data.write(v as string, offsets[i]!, 'utf8');
    if (validity) validity[i >> 3]! |= 1 << (i & 7);
  }
  const bytesView = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return arrow.makeData({ type, length: n, nullCount: nulls, valueOffsets: offsets, data: bytesView, nullBitmap: validity });
}

function isStringList(type: arrow.DataType): type is arrow.List<arrow.Utf8> {
  return arrow.DataType.isList(type) && arrow.DataType.isUtf8(type.children[0]!.type);
}

/** Non-null lists of strings (acl, sectionPath) the same way; undefined for anything else. */
function stringListData(type: arrow.List<arrow.Utf8>, values: readonly unknown[]): arrow.Data<arrow.List<arrow.Utf8>> | undefined {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Array.isArray(v)) return undefined;
    for (const item of v) items.push(item);
    offsets[i + 1] = items.length;
  }
  const child = utf8Data(type.children[0]!.type, items);
  if (!child) return undefined;
  return arrow.makeData({ type, length: n, nullCount: 0, valueOffsets: offsets, child });
}

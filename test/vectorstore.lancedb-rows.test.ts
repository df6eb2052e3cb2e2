import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as arrow from 'apache-arrow';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { numberColumn, rowsToArrow, stringColumn, stringListColumn } from '../src/vectorstore/lancedb-rows.ts';
import { LanceDbVectorStore } from '../src/vectorstore/lancedb.ts';

const strList = () => new arrow.List(new arrow.Field('item', new arrow.Utf8(), true));

/** What Arrow's own row access gives, normalised as the adapter did before (lists as plain string arrays). */
const viaArrow = (v: arrow.Vector) => Array.from({ length: v.length }, (_, i) => v.get(i));

/** A vector split into chunks, some of them slices of a larger buffer (non-zero offsets). */
function chunked<T extends arrow.DataType>(values: unknown[], type: T, cuts: number[], sliceFrom: number): arrow.Vector<T> {
  const padded = [...Array.from({ length: sliceFrom }, () => null), ...values];
  const whole = arrow.vectorFromArray(padded, type).slice(sliceFrom) as arrow.Vector<T>;
  const bounds = [...new Set([0, ...cuts.map((c) => Math.min(values.length, c)), values.length])].sort((a, b) => a - b);
  let out: arrow.Vector<T> | undefined;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const part = whole.slice(bounds[i], bounds[i + 1]);
    out = out ? out.concat(part) : part;
  }
  return out ?? whole;
}

const text = fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: null });

describe('LanceDB result columns', () => {
  it('decodes string cells as Arrow does, across chunks, slices, nulls and any unicode', () => {
    fc.assert(fc.property(fc.array(text, { maxLength: 40 }), fc.array(fc.nat(40), { maxLength: 4 }), fc.nat(5), (values, cuts, from) => {
      const v = chunked(values, new arrow.Utf8(), cuts, from);
      expect(stringColumn(v, v.length)).toEqual(viaArrow(v));
      expect(stringColumn(v, v.length)).toEqual(values);
    }));
  });

  it('decodes other string encodings through Arrow (LargeUtf8)', () => {
    const v = arrow.vectorFromArray(['a', null, 'ü東'], new arrow.LargeUtf8());
    expect(stringColumn(v, 3)).toEqual(['a', null, 'ü東']);
  });

  it('decodes lists of strings as plain arrays; null lists and null items are dropped', () => {
    const list = fc.option(fc.array(text, { maxLength: 5 }), { nil: null });
    fc.assert(fc.property(fc.array(list, { maxLength: 30 }), fc.array(fc.nat(30), { maxLength: 3 }), fc.nat(4), (values, cuts, from) => {
      const v = chunked(values, strList(), cuts, from);
      const expected = values.map((l) => (l ?? []).filter((x): x is string => x !== null));
      expect(stringListColumn(v, v.length)).toEqual(expected);
    }));
  });

  it('decodes numbers (floats, ints, 64-bit ints) with NaN for nulls', () => {
    expect(numberColumn(arrow.vectorFromArray([1.5, null, -2], new arrow.Float64()), 3)).toEqual([1.5, Number.NaN, -2]);
    expect(numberColumn(arrow.vectorFromArray([3, 4], new arrow.Int32()).slice(1), 1)).toEqual([4]);
    expect(numberColumn(arrow.vectorFromArray([5n, 6n], new arrow.Int64()), 2)).toEqual([5, 6]);
  });

  it('fills an absent column with nulls, empty lists and NaN', () => {
    expect(stringColumn(null, 2)).toEqual([null, null]);
    expect(stringListColumn(null, 2)).toEqual([[], []]);
    expect(numberColumn(null, 1)).toEqual([Number.NaN]);
  });
});

describe('LanceDB rows to write', () => {
  const schema = new arrow.Schema([
    new arrow.Field('id', new arrow.Utf8(), false),
    new arrow.Field('vector', new arrow.FixedSizeList(3, new arrow.Field('item', new arrow.Float32(), true)), false),
    new arrow.Field('n', new arrow.Float64(), false),
    new arrow.Field('tags', strList(), false),
    new arrow.Field('note', new arrow.Utf8(), true),
  ]);

  it('builds one batch in the given schema, vectors packed, every cell as given', () => {
    const rows = [
      { id: 'a', vector: [0.5, -1, 2], n: 7, tags: ['x', 'ü'], note: null },
      { id: 'b', vector: [1, 2, 3], n: -1.5, tags: [], note: 'hi 🎉' },
    ];
    const t = rowsToArrow(schema, rows)!;
    expect(t.schema.fields.map((f) => [f.name, f.nullable])).toEqual(schema.fields.map((f) => [f.name, f.nullable]));
    expect(t.batches).toHaveLength(1);
    expect(stringColumn(t.getChild('id'), 2)).toEqual(['a', 'b']);
    expect(Array.from(t.getChild('vector')!.get(0) as Iterable<number>)).toEqual([0.5, -1, 2]);
    expect(Array.from(t.getChild('vector')!.get(1) as Iterable<number>)).toEqual([1, 2, 3]);
    expect(numberColumn(t.getChild('n'), 2)).toEqual([7, -1.5]);
    expect(stringListColumn(t.getChild('tags'), 2)).toEqual([['x', 'ü'], []]);
    expect(stringColumn(t.getChild('note'), 2)).toEqual([null, 'hi 🎉']);
  });

  it("writes strings and lists of strings cell for cell as Arrow's own builder does", () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    const row = fc.record({
      id: text,
      vector: fc.constant([1, 2, 3]),
      n: fc.double({ noNaN: true }),
      tags: fc.array(fc.option(text, { nil: null }), { maxLength: 4 }),
      note: fc.option(text, { nil: null }),
    });
    fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 20 }), (rows) => {
      const t = rowsToArrow(schema, rows)!;
      for (const field of schema.fields.filter((f) => f.name !== 'vector')) {
        const expected = arrow.vectorFromArray(rows.map((r) => r[field.name as keyof typeof r]), field.type);
        const got = t.getChild(field.name)!;
        expect(got.type.toString()).toBe(expected.type.toString());
        expect(got.nullCount).toBe(expected.nullCount);
        const cells = (v: arrow.Vector) => Array.from({ length: v.length }, (_, i) => {
          const c = v.get(i) as unknown;
          return c !== null && typeof c === 'object' && Symbol.iterator in c ? Array.from(c as Iterable<unknown>) : c;
        });
        expect(cells(got)).toEqual(cells(expected));
      }
    }), { numRuns: 300 });
  });

  it('hands a column of anything but strings to Arrow\'s builder', () => {
    const t = rowsToArrow(schema, [{ id: 7 as unknown as string, vector: [1, 2, 3], n: 1, tags: [3 as unknown as string], note: null }])!;
    expect(stringColumn(t.getChild('id'), 1)).toEqual(['7']);
    expect(stringListColumn(t.getChild('tags'), 1)).toEqual([['3']]);
  });

  it('refuses a vector of another width', () => {
    expect(() => rowsToArrow(schema, [{ id: 'a', vector: [1, 2], n: 1, tags: [], note: null }])).toThrow(/dimensions/);
  });

  it('is what the store writes with: its table schema is rebuilt in this Arrow copy at init', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clearance-rows-'));
    const store = new LanceDbVectorStore({ dir });
    try {
      await store.init(4);
      // Without it every write would silently fall back to LanceDB's per-cell conversion.
      expect((store as unknown as { schema?: arrow.Schema }).schema).toBeInstanceOf(arrow.Schema);
    } finally {
      await store.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

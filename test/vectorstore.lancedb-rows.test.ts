import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as arrow from 'apache-arrow';
import { numberColumn, stringColumn, stringListColumn } from '../src/vectorstore/lancedb-rows.ts';

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

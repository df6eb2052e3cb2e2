import { describe, expect, it } from 'vitest';
import { buildPermissionFilter, type PermissionFilter } from '../src/access/index.ts';
import { lancePermissionPredicate, sqlList, sqlString } from '../src/vectorstore/lancedb-filter.ts';
import { qdrantPermissionFilter } from '../src/vectorstore/qdrant-filter.ts';

/**
 * Each store's spelling of the permission filter, exactly. The conformance suites check behaviour
 * against live stores; these pin the translation itself, so any change to it is seen.
 */
const f = (scope: Parameters<typeof buildPermissionFilter>[0]) => buildPermissionFilter(scope);
const handMade = { principals: ['everyone'] } as unknown as PermissionFilter;

describe('LanceDB predicate', () => {
  it('quotes SQL string literals by doubling quotes only, and only strings', () => {
    expect(sqlString("o'brien")).toBe("'o''brien'");
    expect(sqlString('a\\')).toBe("'a\\'");
    expect(sqlString('')).toBe("''");
    expect(() => sqlString(5 as unknown as string)).toThrow(/must be a string/);
    expect(sqlList(['a', "b'c"])).toBe("'a', 'b''c'");
  });

  it('spells every part of the filter', () => {
    expect(lancePermissionPredicate(f({ principals: ['group:b', 'everyone'] }))).toBe("(array_has_any(acl, ['everyone', 'group:b']))");
    expect(lancePermissionPredicate(f({ principals: ['everyone'], requestedSourceIds: ['s2', 's1'], modifiedAfter: new Date(5) })))
      .toBe("(array_has_any(acl, ['everyone'])) AND (sourceId IN ('s1', 's2')) AND (lastModified >= 5)");
    expect(lancePermissionPredicate(f({ principals: ['everyone'], modifiedAfter: new Date(0) })))
      .toBe("(array_has_any(acl, ['everyone'])) AND (lastModified >= 0)");
    expect(lancePermissionPredicate(f({ principals: ['everyone'], excludedSourceIds: ['off'], excludedDocumentIds: ["q'1", 'q2'] })))
      .toBe("(array_has_any(acl, ['everyone'])) AND (sourceId NOT IN ('off')) AND (documentId NOT IN ('q''1', 'q2'))");
  });

  it('answers null (ask nothing) when nothing can match, and refuses a hand-made filter', () => {
    expect(lancePermissionPredicate(f({ principals: [] }))).toBeNull();
    expect(lancePermissionPredicate(f({ principals: ['bogus'] }))).toBeNull();
    expect(lancePermissionPredicate(f({ principals: ['everyone'], requestedSourceIds: [] }))).toBeNull();
    expect(lancePermissionPredicate(f({ principals: ['everyone'], modifiedAfter: new Date('invalid') }))).toBeNull();
    expect(() => lancePermissionPredicate(handMade)).toThrow(/buildPermissionFilter/);
  });
});

describe('Qdrant filter', () => {
  it('spells every part of the filter', () => {
    expect(qdrantPermissionFilter(f({ principals: ['group:b', 'everyone'] }))).toEqual({ must: [{ key: 'acl', match: { any: ['everyone', 'group:b'] } }] });
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], requestedSourceIds: ['s2', 's1'], modifiedAfter: new Date(5) }))).toEqual({
      must: [
        { key: 'acl', match: { any: ['everyone'] } },
        { key: 'sourceId', match: { any: ['s1', 's2'] } },
        { key: 'lastModified', range: { gte: 5 } },
      ],
    });
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], modifiedAfter: new Date(0) }))).toEqual({
      must: [{ key: 'acl', match: { any: ['everyone'] } }, { key: 'lastModified', range: { gte: 0 } }],
    });
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], excludedSourceIds: ['off'] }))).toEqual({
      must: [{ key: 'acl', match: { any: ['everyone'] } }],
      must_not: [{ key: 'sourceId', match: { any: ['off'] } }],
    });
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], excludedDocumentIds: ['d2', 'd1'] }))).toEqual({
      must: [{ key: 'acl', match: { any: ['everyone'] } }],
      must_not: [{ key: 'documentId', match: { any: ['d1', 'd2'] } }],
    });
  });

  it('hands out copies, so a caller cannot widen the sealed filter through them', () => {
    const filter = f({ principals: ['everyone'], requestedSourceIds: ['s'] });
    const q = qdrantPermissionFilter(filter)!;
    (q.must![0] as { match: { any: string[] } }).match.any.push('group:intruder');
    expect(filter.principals).toEqual(['everyone']);
  });

  it('answers null (send nothing) when nothing can match, and refuses a hand-made filter', () => {
    expect(qdrantPermissionFilter(f({ principals: [] }))).toBeNull();
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], requestedSourceIds: [] }))).toBeNull();
    expect(qdrantPermissionFilter(f({ principals: ['everyone'], modifiedAfter: new Date('invalid') }))).toBeNull();
    expect(() => qdrantPermissionFilter(handMade)).toThrow(/buildPermissionFilter/);
  });
});

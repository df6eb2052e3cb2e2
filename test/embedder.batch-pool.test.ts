import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchPool } from '../src/embedder/batch-pool.ts';

const drain = <T>(pool: BatchPool<T>) => {
  const out: T[][] = [];
  for (let b = pool.take(); b.length; b = pool.take()) out.push(b);
  return out;
};

describe('BatchPool', () => {
  it('batches what waits as one sorted partition: the shortest batchSize first', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 128 }), { maxLength: 200 }), fc.integer({ min: 1, max: 40 }), (lengths, batchSize) => {
      const pool = new BatchPool<number>({ batchSize, maxPassed: 1_000 });
      lengths.forEach((l, i) => pool.add(i, l));
      const batches = drain(pool);
      const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
      expect(batches.flat()).toEqual(order);
      batches.forEach((b, k) => expect(b.length).toBe(k < batches.length - 1 ? batchSize : lengths.length - batchSize * (batches.length - 1)));
      expect(pool.size).toBe(0);
    }));
  });

  it('hands every item out exactly once, in batches of at most batchSize, however adds and takes interleave', () => {
    const step = fc.oneof(fc.record({ add: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 50 }) }), fc.constant({ take: true }));
    fc.assert(fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 0, max: 20 }), (steps, batchSize, maxPassed) => {
      const pool = new BatchPool<number>({ batchSize, maxPassed });
      let next = 0;
      const taken: number[] = [];
      for (const s of steps) {
        if ('add' in s) for (const l of s.add) pool.add(next++, l);
        else {
          const b = pool.take();
          expect(b.length).toBeLessThanOrEqual(batchSize);
          expect(b.length).toBe(Math.min(batchSize, b.length + pool.size));
          taken.push(...b);
        }
      }
      for (const b of drain(pool)) taken.push(...b);
      expect([...taken].sort((a, b) => a - b)).toEqual(Array.from({ length: next }, (_, i) => i));
    }));
  });

  it('does not let a long item wait behind a stream of shorter ones: it goes within maxPassed batches', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 30 }), fc.array(fc.integer({ min: 1, max: 99 }), { minLength: 1, maxLength: 16 }), (batchSize, maxPassed, shortLengths) => {
      const pool = new BatchPool<string>({ batchSize, maxPassed });
      pool.add('long', 100);
      let takes = 0;
      for (;;) {
        // Always more shorter items than a batch holds.
        for (let i = 0; i < batchSize + 1; i++) pool.add('short', shortLengths[(takes + i) % shortLengths.length]!);
        const b = pool.take();
        takes++;
        if (b.includes('long')) break;
        expect(takes).toBeLessThanOrEqual(maxPassed);
      }
    }));
  });

  it('finishes the oldest arrival once what is left of it fits in a batch, topped up with what pads least', () => {
    const pool = new BatchPool<string>({ batchSize: 4, maxPassed: 100 });
    for (const l of [1, 2, 3, 4, 90, 95]) pool.add(`a${l}`, l);
    expect(pool.take()).toEqual(['a1', 'a2', 'a3', 'a4']);
    for (const l of [5, 6, 50, 80, 85, 99]) pool.add(`b${l}`, l);
    // Shortest first would take b5, b6, b50, b80 and leave page a waiting for the end.
    expect(pool.take()).toEqual(['b80', 'b85', 'a90', 'a95']);
    for (const l of [60, 70]) pool.add(`c${l}`, l);
    // b is the oldest now; its longest (99) means nothing pads: c's longest top it up.
    expect(pool.take()).toEqual(['b5', 'b6', 'b50', 'b99']);
    expect(pool.take()).toEqual(['c60', 'c70']);
  });

  it('tells two pages added between the same two batches apart when they came in separate turns (a sync reading ahead)', async () => {
    const pages = async (separate: boolean) => {
      const pool = new BatchPool<string>({ batchSize: 4, maxPassed: 100 });
      for (const l of [10, 20, 90, 95]) pool.add(`a${l}`, l);
      if (separate) await Promise.resolve();
      for (const l of [5, 6, 7, 8, 91, 96]) pool.add(`b${l}`, l);
      return pool.take();
    };
    // Page a fits in one batch: it is finished first, and commits while the model embeds page b.
    expect(await pages(true)).toEqual(['a10', 'a20', 'a90', 'a95']);
    // Texts handed over in one synchronous run (one page's calls) are one arrival: shortest first.
    expect(await pages(false)).toEqual(['b5', 'b6', 'b7', 'b8']);
  });

  it('tops the oldest arrival up with the shortest of the rest when too few are shorter', () => {
    const pool = new BatchPool<string>({ batchSize: 4, maxPassed: 100 });
    for (const l of [1, 2, 3, 4, 10]) pool.add(`a${l}`, l);
    expect(pool.take()).toEqual(['a1', 'a2', 'a3', 'a4']);
    for (const l of [90, 50, 70, 60, 80]) pool.add(`b${l}`, l);
    expect(pool.take()).toEqual(['a10', 'b50', 'b60', 'b70']);
  });

  it('batches an overdue item with the items nearest its length', () => {
    const pool = new BatchPool<string>({ batchSize: 3, maxPassed: 1 });
    pool.add('overdue', 50);
    for (const [name, l] of [['a', 1], ['b', 2], ['c', 3]] as const) pool.add(name, l);
    expect(pool.take()).toEqual(['a', 'b', 'c']);
    for (const [name, l] of [['d', 4], ['e', 48], ['f', 49], ['g', 60], ['h', 90]] as const) pool.add(name, l);
    expect(pool.take()).toEqual(['e', 'f', 'overdue']);
  });

  it('removes what a failed caller still has waiting', () => {
    const pool = new BatchPool<{ call: number }>({ batchSize: 2, maxPassed: 4 });
    for (let i = 0; i < 6; i++) pool.add({ call: i % 2 }, i);
    expect(pool.remove((x) => x.call === 1)).toHaveLength(3);
    expect(drain(pool).flat().every((x) => x.call === 0)).toBe(true);
  });
});

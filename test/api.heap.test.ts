import v8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEARCH_HEAP_GROWING_PERCENT, tuneHeapForSearch } from '../src/api/heap.ts';

describe('the heap of a process that serves searches', () => {
  afterEach(() => vi.restoreAllMocks());

  it('lets the old generation grow to twice its live size before a full collection', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    expect(tuneHeapForSearch(['--enable-source-maps', '--max-old-space-size=4096'])).toBe(true);
    expect(SEARCH_HEAP_GROWING_PERCENT).toBe(100);
    expect(set).toHaveBeenCalledExactlyOnceWith('--heap-growing-percent=100');
  });

  it.each([[['--heap-growing-percent=40']], [['--heap_growing_percent=40']], [['--import', 'tsx', '--heap-growing-percent', '40']]])(
    'leaves a growing factor the operator gave node alone (%j)', (execArgv) => {
      const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
      expect(tuneHeapForSearch(execArgv)).toBe(false);
      expect(set).not.toHaveBeenCalled();
    });

  it("reads this process's own node arguments when not told", () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    const saved = process.execArgv;
    process.execArgv = [...saved, '--heap-growing-percent=40'];
    try {
      expect(tuneHeapForSearch()).toBe(false);
    } finally {
      process.execArgv = saved;
    }
    expect(set).not.toHaveBeenCalled();
  });
});

import v8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEARCH_HEAP_GROWING_PERCENT, tuneHeapForSearch } from '../src/api/heap.ts';

describe('the heap of a process that serves searches', () => {
  afterEach(() => vi.restoreAllMocks());

  it('lets the old generation grow to twice its live size before a full collection', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    expect(tuneHeapForSearch({ execArgv: ['--enable-source-maps'], nodeOptions: '--max-old-space-size=4096' })).toBe(true);
    expect(SEARCH_HEAP_GROWING_PERCENT).toBe(100);
    expect(set).toHaveBeenCalledExactlyOnceWith('--heap-growing-percent=100');
  });

  it.each([
    [{ execArgv: ['--heap-growing-percent=40'], nodeOptions: '' }],
    [{ execArgv: ['--heap_growing_percent=40'], nodeOptions: '' }],
    [{ execArgv: [], nodeOptions: '--enable-source-maps  --heap-growing-percent=40' }],
    [{ execArgv: ['--heap-growing-percent', '40'], nodeOptions: '' }],
  ])('leaves a growing factor the operator chose alone (%j)', (given) => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    expect(tuneHeapForSearch(given)).toBe(false);
    expect(set).not.toHaveBeenCalled();
  });

  it('reads the process arguments and NODE_OPTIONS when not told', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    vi.stubEnv('NODE_OPTIONS', '--heap-growing-percent=25');
    try {
      expect(tuneHeapForSearch()).toBe(false);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(set).not.toHaveBeenCalled();
  });
});

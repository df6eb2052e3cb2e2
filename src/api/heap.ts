import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection left, in percent of
 * that, in a process that serves searches. V8's own factor in `bench load`'s API was about 1.3
 * (~87 MB live, the next full collection at ~113 MB), so a full collection came every 2.4-8.4 s of
 * the open loop, each pausing the request thread for 5-26 ms after 23-44 ms of marking steps on it;
 * 10 of 18 clusters of slow requests began within 60 ms of one. What fills the old generation is
 * short-lived data that scavenges do not free: plain `SELECT`s through PGlite, one at a time at 33 a
 * second, leave ~80 KB a second surviving scavenges until a full collection, whatever the young
 * generation's size, and ~0 when its locks and `syncToFs` are bypassed (docs/search-at-scale.md).
 * Twice the live size makes full collections several times rarer, for up to the live heap again in
 * memory.
 */
export const SEARCH_HEAP_GROWING_PERCENT = 100;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * Sets V8's heap growing factor for this process unless the operator chose one on node's command
 * line (`node --heap-growing-percent=… bin/clearance.mjs api`; Node refuses the flag in
 * NODE_OPTIONS). V8 reads the flag each time it sizes the heap after a full collection, so setting
 * it at start-up takes effect from the first one. Returns whether it set it.
 */
export function tuneHeapForSearch(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => FLAG.test(a))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${SEARCH_HEAP_GROWING_PERCENT}`);
  return true;
}

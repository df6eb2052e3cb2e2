import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection left, in percent of
 * that, in a process that serves searches. Each full collection pauses the thread that answers
 * every request, and what fills the old generation is short-lived data that scavenges do not free
 * (PGlite's query path leaves some behind on every query). V8's own factor was about 1.3 in `bench
 * load`'s API, a full collection every few seconds of the open loop; twice the live size makes them
 * several times rarer, for up to the live heap again in memory. Measurements:
 * docs/search-at-scale.md.
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

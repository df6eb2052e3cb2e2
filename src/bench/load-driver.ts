/**
 * The load generator of `bench load`, run as its own small process (see benchLoad). It shares the
 * machine's two cores with the service it measures, so it is kept light: the process that seeded
 * the index holds ~80 MB of heap whose full collections took 60–100 ms of both cores and paused the
 * generator's own event loop, and each pause showed up as a burst of slow "service" latencies.
 * Requests go through undici's `request` rather than `fetch`, which allocates far less per call.
 */
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { percentile } from './corpus.ts';

export interface LoadPlan {
  base: string;
  tokens: string[];
  queries: string[];
  concurrency: number;
  seconds: number;
  single: number;
}

export interface LoadSummary {
  label: string;
  requests: number;
  errors: number;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
}

interface Sample {
  ms: number;
  ok: boolean;
}

function summary(label: string, samples: Sample[], seconds: number): LoadSummary {
  const ms = samples.filter((s) => s.ok).map((s) => s.ms).sort((a, b) => a - b);
  return {
    label,
    requests: samples.length,
    errors: samples.length - ms.length,
    throughput: samples.length / seconds,
    p50: percentile(ms, 50),
    p95: percentile(ms, 95),
    p99: percentile(ms, 99),
  };
}

export type LoadRuns = [single: LoadSummary, closed: LoadSummary, open: LoadSummary];

/**
 * One request at a time, then a closed loop of `concurrency` callers for `seconds`, then an open
 * loop at half the closed loop's throughput: requests sent on a fixed schedule whether or not
 * earlier ones have answered, so queueing shows in the latencies.
 */
export async function driveLoad(plan: LoadPlan): Promise<LoadRuns> {
  const { base, tokens, queries, concurrency, seconds } = plan;
  const dispatcher = new Agent({ connections: concurrency + 4, keepAliveTimeout: 30_000 });
  const url = `${base}/v1/search`;
  let n = 0;
  const one = async (): Promise<Sample> => {
    const i = n++;
    const started = performance.now();
    try {
      const res = await request(url, {
        method: 'POST', dispatcher,
        headers: { authorization: `Bearer ${tokens[i % tokens.length]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: queries[i % queries.length], topK: 10 }),
      });
      await res.body.arrayBuffer();
      return { ms: performance.now() - started, ok: res.statusCode === 200 };
    } catch {
      return { ms: performance.now() - started, ok: false };
    }
  };
  try {
    // Warm-up: the model and the table caches.
    for (let i = 0; i < 20; i++) await one();

    const singleSamples: Sample[] = [];
    let t = performance.now();
    for (let i = 0; i < plan.single; i++) singleSamples.push(await one());
    const single = summary('one at a time', singleSamples, (performance.now() - t) / 1000);

    const closedSamples: Sample[] = [];
    t = performance.now();
    const deadline = t + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) closedSamples.push(await one());
    }));
    const closed = summary(`closed loop, ${concurrency} callers`, closedSamples, (performance.now() - t) / 1000);

    const rate = closed.throughput / 2;
    const openSamples: Promise<Sample>[] = [];
    t = performance.now();
    const total = Math.max(1, Math.round(rate * seconds));
    for (let i = 0; i < total; i++) {
      const due = t + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      openSamples.push(one());
    }
    const open = summary(`open loop, ${rate.toFixed(1)} req/s offered`, await Promise.all(openSamples), (performance.now() - t) / 1000);
    return [single, closed, open];
  } finally {
    await dispatcher.close();
  }
}

// Forked by benchLoad: one plan in, its summaries out.
if (process.send && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.once('message', (plan: LoadPlan) => {
    driveLoad(plan).then(
      (rows) => process.send!({ rows }, () => process.exit(0)),
      (err: unknown) => process.send!({ error: String(err instanceof Error ? err.stack : err) }, () => process.exit(1)),
    );
  });
}

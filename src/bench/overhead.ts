import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../api/app.ts';
import type { Services } from '../context.ts';
import { createAuthenticator, mintDevToken } from '../identity/index.ts';
import type { AuditRecord } from '../metadata/interface.ts';
import { closeServices } from '../services.ts';
import { startTracing, tracesProtocol, type Tracing } from '../telemetry/tracing.ts';
import { paragraph, percentile, rng } from './corpus.ts';
import { benchServices } from './harness.ts';
import { seedSearchIndex } from './search.ts';

const PASSES = [
  { name: 'audit off, tracing off', audit: false, tracing: false },
  { name: 'audit on,  tracing off', audit: true, tracing: false },
  { name: 'audit off, tracing on ', audit: false, tracing: true },
  { name: 'audit on,  tracing on ', audit: true, tracing: true },
] as const;
/** Each pass's queries are spread over this many rounds, passes interleaved, so drift in machine load hits all alike. */
const ROUNDS = 10;

/**
 * `bench search --overhead`: what the audit trail and OpenTelemetry tracing add to a search, end
 * to end through the HTTP app (dev token verification, routing, the search service, the audit
 * write, the server and search spans). Tracing exports over real OTLP/HTTP (protobuf unless
 * OTEL_EXPORTER_OTLP_PROTOCOL says http/json) to a receiver in this process, batched as in production; "audit off" replaces only the audit append with a
 * no-op. Everything else (index, queries, callers) is identical between passes.
 */
export async function benchSearchOverhead({ chunks, queries, synthetic = false }: { chunks: number; queries: number; synthetic?: boolean }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-overhead-'));
  const receiver = await otlpSink();
  try {
    const s = await benchServices(tmp, { QDRANT_COLLECTION: `bench_${Date.now()}`, AUTH_MODE: 'dev', SEARCH_RATE_LIMIT: '0' });
    const r = rng(7);
    await seedSearchIndex(s, tmp, r, chunks, synthetic);
    const queryTexts = Array.from({ length: queries }, () => paragraph(r, 8));
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      mintDevToken({ email: `u${i}@acme.test`, groups: [`g${i}`, `g${(i + 7) % 50}`], dataDir: s.config.dataDir })));
    const audited = createApp(s, createAuthenticator(s.config));
    const unaudited = createApp(withoutAudit(s), createAuthenticator(s.config));
    const tracingConfig = { ...s.config, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: false };

    const ms: number[][] = PASSES.map(() => []);
    const once = async (app: typeof audited, i: number) => {
      const t = performance.now();
      const res = await app.request('/v1/search', {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[i % tokens.length]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: queryTexts[i], topK: 10 }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`search answered ${res.status}`);
      return performance.now() - t;
    };
    // Warm-up: model, store caches, JIT, and the SDK's lazy imports.
    const warm = await startTracing(tracingConfig);
    for (let i = 0; i < Math.min(50, queries); i++) await once(audited, i);
    await warm.shutdown();

    const load = os.loadavg();
    const perRound = Math.ceil(queries / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [p, pass] of PASSES.entries()) {
        const tracing: Tracing | null = pass.tracing ? await startTracing(tracingConfig) : null;
        for (let i = round * perRound; i < Math.min(queries, (round + 1) * perRound); i++) ms[p]!.push(await once(pass.audit ? audited : unaudited, i));
        await tracing?.shutdown();
      }
    }
    const loadAfter = os.loadavg();

    const sorted = ms.map((m) => [...m].sort((a, b) => a - b));
    const base = sorted[0]!;
    console.log(`search overhead of auditing and tracing, end to end through the HTTP app (POST /v1/search, hybrid, topK 10)`);
    console.log(`vector store: ${s.vectors.kind}   chunks: ${chunks}${synthetic ? ' (synthetic index vectors; queries embedded by the model)' : ''}   queries per pass: ${queries}   model: ${s.embedder.modelId}   passes interleaved in ${ROUNDS} rounds`);
    console.log(`tracing exports over OTLP/HTTP (${tracesProtocol(tracingConfig)}) to an in-process receiver: ${receiver.requests()} export requests, ${(receiver.bytes() / 1024).toFixed(0)} KiB`);
    for (const [p, pass] of PASSES.entries()) {
      const m = sorted[p]!;
      const d50 = percentile(m, 50) - percentile(base, 50);
      const d95 = percentile(m, 95) - percentile(base, 95);
      console.log(`  ${pass.name}:  p50 ${percentile(m, 50).toFixed(2)} ms   p95 ${percentile(m, 95).toFixed(2)} ms` +
        (p === 0 ? '' : `   (vs off: p50 ${sign(d50)} ms, ${sign((100 * d50) / percentile(base, 50), 1)}%;  p95 ${sign(d95)} ms, ${sign((100 * d95) / percentile(base, 95), 1)}%)`));
    }
    console.log(`load average (1, 5, 15 min): before ${load.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}   (${os.cpus().length} cores)`);
    await closeServices(s);
  } finally {
    await receiver.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

const sign = (v: number, digits = 2) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;

/** The services with the audit append made a no-op (the "audit off" passes); every other store call is the real one. */
function withoutAudit(s: Services): Services {
  const real = <T extends object>(target: T, key: string | symbol) => {
    const v = Reflect.get(target, key, target) as unknown;
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  };
  const audit = new Proxy(s.metadata.audit, { get: (target, key) => (key === 'append' ? async () => ({}) as AuditRecord : real(target, key)) });
  const metadata = new Proxy(s.metadata, { get: (target, key) => (key === 'audit' ? audit : real(target, key)) });
  return { ...s, metadata };
}

/** An OTLP/HTTP receiver that reads, counts and drops what it is sent. */
async function otlpSink() {
  let bytes = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    req.on('data', (d: Buffer) => { bytes += d.length; });
    req.on('end', () => {
      requests++;
      // An empty ExportTraceServiceResponse in the request's encoding.
      const json = String(req.headers['content-type']).startsWith('application/json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytes: () => bytes,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

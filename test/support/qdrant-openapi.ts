/**
 * Validates HTTP requests (and the mock's responses) against Qdrant's published OpenAPI 3.0 document.
 * OpenAPI 3.0 is not plain JSON Schema, so the schemas are rewritten first:
 *  - `{nullable: true}` on its own (Qdrant's way of writing "or null" inside anyOf) would accept
 *    anything; it becomes `{type: 'null'}`. `nullable` next to a `type` becomes a type union.
 *  - in "closed" mode every object schema that lists its properties rejects unknown ones, so a
 *    misspelt key (e.g. `filtr`, which a lenient server would ignore, widening a search) fails.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';

export const QDRANT_OPENAPI_PATH = fileURLToPath(new URL('../fixtures/qdrant/openapi-1.19.0.json', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  literalLength: number;
  op: JsonObject;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
}

function rewrite(node: Json, closed: boolean): Json {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, closed));
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    // `properties` maps names to schemas: recurse into the schemas, never treat the names as keywords.
    if (k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, rewrite(s, closed)]));
    } else if (k === 'example' || k === 'description') {
      continue;
    } else {
      out[k] = rewrite(v, closed);
    }
  }
  if (out.nullable === true) {
    delete out.nullable;
    const constraintKeys = Object.keys(out).filter((k) => !['default', 'deprecated', 'title', 'readOnly', 'writeOnly'].includes(k));
    if (constraintKeys.length === 0) return { type: 'null' };
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (out.type === undefined) return { anyOf: [out, { type: 'null' }] };
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  } else if (out.nullable === false) {
    delete out.nullable;
  }
  if (closed && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const uint = (max: number) => ({ type: 'number' as const, validate: (n: number) => Number.isInteger(n) && n >= 0 && n <= max });

function makeAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (a: Ajv) => void;
  addFormats(ajv);
  ajv.addFormat('uint', uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat('uint64', uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat('uint32', uint(2 ** 32 - 1));
  ajv.addFormat('uint16', uint(2 ** 16 - 1));
  ajv.addFormat('uint8', uint(255));
  ajv.addFormat('partial-date-time', /^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?/);
  return ajv;
}

export class QdrantOpenApi {
  readonly spec: JsonObject;
  private readonly ajv: Ajv;
  private readonly operations: Operation[] = [];
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly closed: boolean;

  constructor(opts: { closed?: boolean; specPath?: string } = {}) {
    this.spec = JSON.parse(fs.readFileSync(opts.specPath ?? QDRANT_OPENAPI_PATH, 'utf8')) as JsonObject;
    const components = this.spec.components as JsonObject;
    this.closed = opts.closed ?? true;
    this.ajv = makeAjv();
    this.ajv.addSchema({ $id: 'qdrant', components: { schemas: rewrite(components.schemas!, this.closed) } } as object);
    for (const [template, item] of Object.entries(this.spec.paths as JsonObject)) {
      for (const [method, op] of Object.entries(item as JsonObject)) {
        if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
        const pattern = template.split('/').map((seg) => (/^\{.+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
        this.operations.push({
          method: method.toUpperCase(), template, regex: new RegExp(`^${pattern}$`),
          literalLength: template.replace(/\{[^}]+\}/g, '').length, op: op as JsonObject,
        });
      }
    }
  }

  /** The operation a request addresses; the most literal template wins (`/collections/aliases` over `/collections/{name}`). */
  findOperation(method: string, path: string): Operation | undefined {
    return this.operations
      .filter((o) => o.method === method.toUpperCase() && o.regex.test(path))
      .sort((a, b) => b.literalLength - a.literalLength)[0];
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let fn = this.cache.get(key);
    if (!fn) {
      // Inline schemas refer to `#/components/...`; re-anchor them on the document added above.
      const anchored = JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"qdrant#/components/')) as Json;
      fn = this.ajv.compile(rewrite(anchored, this.closed) as object);
      this.cache.set(key, fn);
    }
    return fn;
  }

  private static describe(errors: ErrorObject[] | null | undefined): string[] {
    return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
  }

  /** Every way the request departs from the spec; empty when it conforms. */
  validateRequest(req: RecordedRequest): string[] {
    const op = this.findOperation(req.method, req.path);
    if (!op) return [`${req.method} ${req.path}: no such operation in the Qdrant API`];
    const errors: string[] = [];
    const where = `${req.method} ${op.template} (${String(op.op.operationId)})`;
    const params = ((op.op.parameters as JsonObject[] | undefined) ?? []).filter((p) => p.in === 'query');
    for (const [name, raw] of Object.entries(req.query)) {
      const param = params.find((p) => p.name === name);
      if (!param) { errors.push(`${where}: undeclared query parameter "${name}"`); continue; }
      const schema = param.schema as Json;
      const resolved = this.resolve(schema);
      const type = resolved && typeof resolved === 'object' && !Array.isArray(resolved) ? resolved.type : undefined;
      const value = type === 'boolean' ? (raw === 'true' ? true : raw === 'false' ? false : raw)
        : type === 'integer' || type === 'number' ? (/^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw) : raw;
      const v = this.validator(`${op.template}#${op.method}#q#${name}`, schema);
      if (!v(value)) errors.push(...QdrantOpenApi.describe(v.errors).map((e) => `${where} query ${name}: ${e}`));
    }
    const content = (op.op.requestBody as JsonObject | undefined)?.content as JsonObject | undefined;
    const schema = (content?.['application/json'] as JsonObject | undefined)?.schema;
    if (schema === undefined) {
      if (req.body !== undefined) errors.push(`${where}: the operation takes no body`);
    } else if (req.body === undefined) {
      if ((op.op.requestBody as JsonObject).required) errors.push(`${where}: body required`);
    } else {
      const v = this.validator(`${op.template}#${op.method}#body`, schema);
      if (!v(req.body)) errors.push(...QdrantOpenApi.describe(v.errors).map((e) => `${where} body: ${e}`));
    }
    return errors;
  }

  validateResponse(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.findOperation(method, path);
    if (!op) return [`${method} ${path}: no such operation`];
    const responses = op.op.responses as JsonObject;
    const r = (responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default) as JsonObject | undefined;
    const schema = ((r?.content as JsonObject | undefined)?.['application/json'] as JsonObject | undefined)?.schema;
    if (schema === undefined) return [`${method} ${op.template}: no response schema for ${status}`];
    const v = this.validator(`${op.template}#${op.method}#resp#${status}`, schema);
    return v(body) ? [] : QdrantOpenApi.describe(v.errors).map((e) => `${method} ${op.template} response ${status}: ${e}`);
  }

  private resolve(schema: Json): Json {
    if (schema && typeof schema === 'object' && !Array.isArray(schema) && typeof schema.$ref === 'string') {
      const name = schema.$ref.replace('#/components/schemas/', '');
      return ((this.spec.components as JsonObject).schemas as JsonObject)[name] ?? null;
    }
    return schema;
  }
}

import type { Context } from 'hono';
import type { AuditOutcome, MetadataStore } from '../metadata/interface.ts';
import type { Caller } from '../types.ts';
import type { AppEnv } from './env.ts';
import { requiredRole } from './guard.ts';

/** What a handler tells the audit trail about its request, beyond what the route already says. */
export interface AuditNote {
  action?: string;
  target?: string | null;
  details?: Record<string, unknown>;
  /** Set by handlers that wrote their own record (or that must not be recorded). */
  skip?: boolean;
}

const ID = '[^/]+';
/** Admin and compliance actions by route; anything else is recorded under its method and path. */
const ACTIONS: [method: string, path: RegExp, action: string][] = [
  ['POST', new RegExp('^/v1/sources/?$'), 'source.create'],
  ['PATCH', new RegExp(`^/v1/sources/${ID}/?$`), 'source.update'],
  ['DELETE', new RegExp(`^/v1/sources/${ID}/?$`), 'source.delete'],
  ['POST', new RegExp(`^/v1/sources/${ID}/sync/?$`), 'source.sync'],
  ['POST', new RegExp('^/v1/agents/?$'), 'agent.create'],
  ['PATCH', new RegExp(`^/v1/agents/${ID}/?$`), 'agent.update'],
  ['DELETE', new RegExp(`^/v1/agents/${ID}/?$`), 'agent.revoke'],
  ['POST', new RegExp(`^/v1/documents/${ID}/quarantine/?$`), 'document.quarantine'],
  ['DELETE', new RegExp(`^/v1/documents/${ID}/quarantine/?$`), 'document.unquarantine'],
  ['POST', new RegExp(`^/v1/freshness/alerts/${ID}/ack/?$`), 'alert.acknowledge'],
  ['GET', new RegExp('^/v1/access/explain/?$'), 'access.explain'],
  ['GET', new RegExp(`^/v1/documents/${ID}/access/?$`), 'document.access'],
  ['GET', new RegExp('^/v1/audit(/|$)'), 'audit.read'],
];

export function actionFor(method: string, path: string): string {
  const m = method.toUpperCase();
  return ACTIONS.find(([am, re]) => am === m && re.test(path))?.[2] ?? `${m} ${path}`;
}

/** The id segment after a collection (`/v1/sources/<id>/sync` → the source id). */
function targetOf(path: string): string | null {
  const m = /^\/v1\/(?:sources|agents|documents|runs|freshness\/alerts)\/([^/]+)/.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!;
  }
}

export const actorOf = (caller: Caller): string | null => caller.email ?? (caller.kind === 'admin-token' ? 'admin-token' : null);

/** A request refused for want of the route's role: one `denied` record, then the 403 as before. */
export async function recordDenied(metadata: MetadataStore, c: Context<AppEnv>, caller: Caller, reason: string): Promise<void> {
  try {
    await metadata.audit.append({
      user: actorOf(caller), agent: null, action: actionFor(c.req.method, c.req.path), target: `${c.req.method} ${c.req.path}`,
      outcome: 'denied', query: null, documentIds: [], details: { reason, requiredRole: requiredRole(c.req.method, c.req.path) },
      requestId: c.get('requestId'),
    });
  } catch (err) {
    c.get('log').error({ err }, 'could not write the audit record of a denied request');
  }
}

const outcomeOf = (status: number): AuditOutcome => (status < 400 ? 'ok' : status === 401 || status === 403 ? 'denied' : 'error');

/**
 * One audit record per admin or compliance action (every non-GET route that needs those roles,
 * and the reads that reveal who may see what). Searches, document fetches and MCP tool calls
 * write their own records, with the documents they returned.
 */
export async function auditTrail(c: Context<AppEnv>, next: () => Promise<void>): Promise<void> {
  await next();
  if (requiredRole(c.req.method, c.req.path) === 'user') return;
  const note = c.get('audit');
  const action = note?.action ?? actionFor(c.req.method, c.req.path);
  if (note?.skip || (c.req.method === 'GET' && !note) || action === 'audit.read') return;
  // No route answered (an unknown path or method): nothing was done, so there is no action to record.
  if (c.res.status === 404 && !note && !ACTIONS.some(([m, re]) => m === c.req.method.toUpperCase() && re.test(c.req.path))) return;
  const ctx = c.get('ctx');
  await ctx.metadata.audit.append({
    user: actorOf(ctx.caller), agent: null, action, target: note?.target ?? targetOf(c.req.path),
    outcome: outcomeOf(c.res.status), query: null, documentIds: [],
    details: { status: c.res.status, ...(note?.details ?? {}) }, requestId: ctx.requestId,
  });
}

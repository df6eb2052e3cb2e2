import { forbidden } from '../errors.ts';
import type { Caller } from '../types.ts';

export type Role = 'user' | 'compliance' | 'admin';

/**
 * Who may call what, by route prefix. Anything under /v1 that is not listed here needs the admin
 * role, so a route added later is closed until someone opens it on purpose.
 */
const OPEN_TO: { method: string; path: RegExp; role: Exclude<Role, 'admin'> }[] = [
  { method: 'POST', path: /^\/v1\/search\/?$/, role: 'user' },
  { method: 'GET', path: /^\/v1\/documents\/[^/]+\/?$/, role: 'user' },
  { method: '*', path: /^\/mcp(\/|$)/, role: 'user' },
  { method: '*', path: /^\/v1\/freshness(\/|$)/, role: 'compliance' },
  { method: '*', path: /^\/v1\/audit(\/|$)/, role: 'compliance' },
  { method: '*', path: /^\/v1\/access(\/|$)/, role: 'compliance' },
  { method: '*', path: /^\/v1\/documents\/[^/]+\/(access|quarantine)\/?$/, role: 'compliance' },
  { method: 'GET', path: /^\/v1\/quarantine\/?$/, role: 'compliance' },
];

export function requiredRole(method: string, path: string): Role {
  for (const rule of OPEN_TO) {
    if ((rule.method === '*' || rule.method === method.toUpperCase()) && rule.path.test(path)) return rule.role;
  }
  return 'admin';
}

export function hasRole(caller: Caller, role: Role): boolean {
  if (role === 'admin') return caller.isAdmin;
  if (role === 'compliance') return caller.isAdmin || caller.isCompliance;
  return true;
}

/** Throws 403 unless the caller holds the role the route needs. */
export function authorize(caller: Caller, method: string, path: string): Role {
  const role = requiredRole(method, path);
  if (!hasRole(caller, role)) throw forbidden(`This action needs the ${role} role`);
  return role;
}

import type { Caller } from '../types.ts';

/**
 * Principals: the one vocabulary of "who" that connectors write into ACLs and callers are matched
 * against. They are plain strings so every vector store can index them as a keyword array and
 * filter with "any of":
 *   user:<email, lower-case>      a person
 *   group:<name>                  an IdP group as it appears in the caller's groups claim
 *   sgroup:<sourceId>/<groupId>   a group defined by a source (Entra, Google, Confluence); membership is synced
 *   domain:<domain>               everyone whose email is in that domain
 *   everyone                      any authenticated caller
 * Anything else is not a principal and grants nothing. Every constructor and parser below returns
 * null rather than guess, so a malformed input can only ever narrow what someone sees.
 */
export type Principal = string;

export const EVERYONE: Principal = 'everyone';

export type ParsedPrincipal =
  | { kind: 'user'; email: string }
  | { kind: 'group'; name: string }
  | { kind: 'sgroup'; sourceId: string; groupId: string }
  | { kind: 'domain'; domain: string }
  | { kind: 'everyone' };

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const DOMAIN = /^[^\s@/]+$/;

/**
 * The one email rule, for tokens, ACL files and connectors alike: trimmed, lower-cased, exactly
 * one "@" with something on each side, no whitespace. Anything else is not an email (null).
 */
export function normalizeEmail(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const email = raw.trim().toLowerCase();
  return EMAIL.test(email) ? email : null;
}

export function userPrincipal(email: unknown): Principal | null {
  const e = normalizeEmail(email);
  return e === null ? null : `user:${e}`;
}

/** IdP group names are compared exactly as the groups claim spells them (trimmed). */
export function groupPrincipal(name: unknown): Principal | null {
  if (typeof name !== 'string') return null;
  const n = name.trim();
  return n === '' ? null : `group:${n}`;
}

/** A group defined by a source; the source id must not contain "/" (ours are UUIDs). */
export function sourceGroupPrincipal(sourceId: unknown, groupId: unknown): Principal | null {
  if (typeof sourceId !== 'string' || typeof groupId !== 'string') return null;
  if (sourceId === '' || sourceId.includes('/') || groupId === '') return null;
  return `sgroup:${sourceId}/${groupId}`;
}

export function domainPrincipal(domain: unknown): Principal | null {
  if (typeof domain !== 'string') return null;
  const d = domain.trim().toLowerCase();
  return DOMAIN.test(d) ? `domain:${d}` : null;
}

const KIND = /^(user|group|sgroup|domain):/;

/** `[kind, value]` of a `kind:value` principal of a known kind, or null. */
function split(raw: string): [string, string] | null {
  const m = KIND.exec(raw);
  return m ? [m[1]!, raw.slice(m[0].length)] : null;
}

/** Reads a principal string; null when it is not one (unknown kind, empty or malformed value). */
export function parsePrincipal(raw: unknown): ParsedPrincipal | null {
  if (typeof raw !== 'string') return null;
  if (raw === EVERYONE) return { kind: 'everyone' };
  const parts = split(raw);
  if (!parts) return null;
  const [kind, value] = parts;
  switch (kind) {
    case 'user':
      // Canonical only: the value must already be the normalised email.
      return normalizeEmail(value) === value ? { kind: 'user', email: value } : null;
    case 'group':
      return value !== '' && value.trim() === value ? { kind: 'group', name: value } : null;
    case 'sgroup': {
      const slash = value.indexOf('/');
      if (slash <= 0 || slash === value.length - 1) return null;
      return { kind: 'sgroup', sourceId: value.slice(0, slash), groupId: value.slice(slash + 1) };
    }
    default: // 'domain', the last kind KIND admits
      return DOMAIN.test(value) && value === value.toLowerCase() ? { kind: 'domain', domain: value } : null;
  }
}

/** True only for a principal in its canonical spelling (what ACLs store and callers present). */
export const isPrincipal = (raw: unknown): raw is Principal => parsePrincipal(raw) !== null;

/**
 * The canonical spelling of something meant as a principal (user emails and domains lower-cased,
 * surrounding space trimmed), or null when it is not one.
 */
export function normalizePrincipal(raw: unknown): Principal | null {
  if (typeof raw !== 'string') return null;
  const s = raw.trim();
  if (s === EVERYONE) return EVERYONE;
  const parts = split(s);
  if (!parts) return null;
  const [kind, value] = parts;
  switch (kind) {
    case 'user': return userPrincipal(value);
    case 'group': return groupPrincipal(value);
    case 'domain': return domainPrincipal(value);
    default: return isPrincipal(s) ? s : null;
  }
}

/**
 * An ACL as stored: canonical, de-duplicated, sorted. Entries that are not principals are left
 * out (they grant nothing) and listed in `rejected`, so the run can report them.
 */
export function normalizeAcl(entries: readonly unknown[]): { acl: Principal[]; rejected: string[] } {
  const acl = new Set<Principal>();
  const rejected: string[] = [];
  for (const e of entries) {
    const p = normalizePrincipal(e);
    if (p === null) rejected.push(String(e));
    else acl.add(p);
  }
  return { acl: [...acl].sort(), rejected };
}

/**
 * Everything a caller is. A document is visible when its ACL shares at least one principal with
 * this list. `sourceGroupPrincipals` are the `sgroup:` principals of source groups containing the
 * caller's email (resolved transitively by whoever syncs memberships); anything else passed there
 * is dropped, so a caller can never be handed `everyone` or another user's principal by mistake.
 * A caller without a valid email (the bootstrap admin token) gets no principals: admins manage
 * the service, they do not read every document.
 */
export function callerPrincipals(caller: Pick<Caller, 'email' | 'groups'>, sourceGroupPrincipals: readonly string[]): Principal[] {
  const email = normalizeEmail(caller.email);
  if (email === null) return [];
  const out = new Set<Principal>([`user:${email}`, EVERYONE]);
  const domain = domainPrincipal(email.slice(email.indexOf('@') + 1));
  if (domain) out.add(domain);
  for (const g of caller.groups) {
    const p = groupPrincipal(g);
    if (p) out.add(p);
  }
  for (const p of sourceGroupPrincipals) if (parsePrincipal(p)?.kind === 'sgroup') out.add(p);
  return [...out];
}

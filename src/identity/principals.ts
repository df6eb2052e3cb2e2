import type { Caller, Principal } from '../types.ts';

/**
 * The one place a caller's principals are computed (format: top of src/types.ts). A document is
 * visible when its ACL shares at least one principal with this list.
 *
 * `sourceGroupPrincipals` are the `sgroup:` principals of source groups containing the caller's
 * email (resolved transitively by whoever syncs memberships); anything else passed there is dropped,
 * so a caller can never be handed `everyone` or another user's principal by mistake.
 *
 * A caller without an email (the bootstrap admin token) gets no principals: admins manage the
 * service, they do not read every document.
 */
export function callerPrincipals(caller: Caller, sourceGroupPrincipals: readonly string[] = []): Principal[] {
  if (!caller.email) return [];
  const email = caller.email.trim().toLowerCase();
  const at = email.lastIndexOf('@');
  if (email === '' || at <= 0 || at === email.length - 1) return [];
  const out = new Set<Principal>([`user:${email}`, `domain:${email.slice(at + 1)}`, 'everyone']);
  for (const g of caller.groups) if (typeof g === 'string' && g !== '') out.add(`group:${g}`);
  for (const p of sourceGroupPrincipals) if (typeof p === 'string' && /^sgroup:[^/]+\/.+$/.test(p)) out.add(p);
  return [...out];
}

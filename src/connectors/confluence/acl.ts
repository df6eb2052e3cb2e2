import type { Principal } from '../../types.ts';

/**
 * Contract §4, Confluence row: a user may read a page when they hold the space's view permission
 * AND every read restriction on the page and on each of its ancestors lets them in. Edit
 * restrictions never enter this module.
 *
 * A Clearance ACL is a list of principals joined by "any of", so an AND of several levels cannot be
 * written down symbolically in general. It is computed instead:
 *  - levels open to everyone drop out (everyone ∩ X = X);
 *  - no level left → `everyone`; one level left → its users and groups as they are, which stays
 *    right whatever the groups' memberships become;
 *  - several levels → every group named on ALL of them (its members pass every level, whoever they
 *    are), plus each concrete user who passes every level with the groups expanded to their
 *    current members and who is not already covered by such a group.
 * The last case depends on memberships (`usesMembership`), so the connector recomputes it from
 * fresh memberships on every sync: a membership change alone then changes the ACL, and the engine
 * records it without embedding anything.
 */

/** Who a level lets in: everyone, or the union of the listed users and the members of the listed groups. */
export interface ReaderSet {
  everyone: boolean;
  /** Lower-case emails. */
  users: ReadonlySet<string>;
  /** Confluence group ids. */
  groups: ReadonlySet<string>;
}

export interface IntersectedAcl {
  /** Lower-case emails, as `user:` principals. */
  users: string[];
  /** Group ids, as source-group principals. */
  groups: string[];
  everyone: boolean;
  usesMembership: boolean;
}

export type MembersOf = (groupId: string) => ReadonlySet<string>;

export function intersectReaders(levels: ReaderSet[], membersOf: MembersOf): IntersectedAcl {
  const limiting = levels.filter((l) => !l.everyone);
  if (limiting.length === 0) return { users: [], groups: [], everyone: true, usesMembership: false };
  if (limiting.length === 1) {
    const [only] = limiting;
    return { users: [...only!.users].sort(), groups: [...only!.groups].sort(), everyone: false, usesMembership: false };
  }
  const [first, ...rest] = limiting as [ReaderSet, ...ReaderSet[]];
  const groups = [...first.groups].filter((g) => rest.every((l) => l.groups.has(g))).sort();
  const covered = new Set<string>();
  for (const g of groups) for (const m of membersOf(g)) covered.add(m);
  const admits = (level: ReaderSet, email: string) => level.users.has(email) || [...level.groups].some((g) => membersOf(g).has(email));
  const candidates = new Set<string>(first.users);
  for (const g of first.groups) for (const m of membersOf(g)) candidates.add(m);
  const users = [...candidates].filter((u) => !covered.has(u) && rest.every((l) => admits(l, u))).sort();
  return { users, groups, everyone: false, usesMembership: true };
}

/**
 * The one place that spells principals for this connector (so it can move to a shared module).
 * Emails are lower-cased; groups become `sgroup:<sourceId>/<groupId>`, whose members the connector
 * syncs through `groups()`.
 */
export const principals = {
  everyone: 'everyone' as Principal,
  user: (email: string): Principal => `user:${email.trim().toLowerCase()}`,
  group: (sourceId: string, groupId: string): Principal => `sgroup:${sourceId}/${groupId}`,
};

export function toPrincipals(sourceId: string, acl: IntersectedAcl): Principal[] {
  if (acl.everyone) return [principals.everyone];
  return [...acl.groups.map((g) => principals.group(sourceId, g)), ...acl.users.map(principals.user)].sort();
}

const EMAIL = /^[^\s@|]+@[^\s@|]+$/;
export function usableEmail(value: string | null | undefined): string | null {
  const e = value?.trim().toLowerCase();
  return e && EMAIL.test(e) ? e : null;
}

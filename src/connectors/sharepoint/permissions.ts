import type { ResolvedAcl } from '../interface.ts';

/**
 * Graph `permission` resources → Clearance principals (contract §4, SharePoint row).
 *
 * `GET /drives/{d}/items/{i}/permissions` lists the item's EFFECTIVE permissions: the ones set on
 * the item plus those inherited from its folders, library and site ("Effective permissions of an
 * item can come from two sources…", permission-get / driveitem-list-permissions). One call per
 * item is therefore enough; `inheritedFrom` is informational and not relied upon (SharePoint
 * libraries often omit it).
 *
 * Every path that cannot be resolved grants nothing and leaves a `problems` entry.
 */

export interface GraphIdentity {
  id?: string;
  displayName?: string;
  email?: string;
  loginName?: string;
}

export interface GraphIdentitySet {
  user?: GraphIdentity | null;
  group?: GraphIdentity | null;
  siteUser?: GraphIdentity | null;
  siteGroup?: GraphIdentity | null;
  application?: GraphIdentity | null;
  device?: GraphIdentity | null;
}

export interface GraphPermission {
  id?: string;
  roles?: string[];
  grantedToV2?: GraphIdentitySet | null;
  grantedToIdentitiesV2?: GraphIdentitySet[] | null;
  /** Deprecated v1 shapes, read only when the V2 ones are absent. */
  grantedTo?: GraphIdentitySet | null;
  grantedToIdentities?: GraphIdentitySet[] | null;
  link?: { scope?: string; type?: string } | null;
  inheritedFrom?: unknown;
  expirationDateTime?: string | null;
}

export interface MappedAcl extends ResolvedAcl {
  principals: string[];
  problems: string[];
  /** Entra group ids referenced, whose memberships groups() must sync. */
  groupIds: string[];
}

type Resolution = { principal: string; groupId?: string } | { problem: string };

export type UserEmailLookup = (userId: string) => Promise<string | null>;

/** "Limited Access" is what SharePoint grants on parents of a shared item: it does not open the folder. */
const NON_READING_ROLE = /limited\s*access|limitedaccess/i;

const EMAIL = /^[^\s@|]+@[^\s@|]+$/;

export class PermissionMapper {
  private readonly siteGroups: Map<string, string[]>;

  constructor(
    private readonly sourceId: string,
    private readonly lookupUserEmail: UserEmailLookup,
    /** Admin-declared members of SharePoint groups, keyed by display name (case-insensitive). */
    siteGroupMembers: Record<string, string[]> = {},
  ) {
    this.siteGroups = new Map(Object.entries(siteGroupMembers).map(([k, v]) => [k.trim().toLowerCase(), v]));
  }

  async map(permissions: GraphPermission[], now = Date.now()): Promise<MappedAcl> {
    const principals = new Set<string>();
    const problems: string[] = [];
    const groupIds = new Set<string>();
    for (const p of permissions) {
      const label = `permission ${p.id ?? '(no id)'}`;
      if (p.expirationDateTime) {
        const at = Date.parse(p.expirationDateTime);
        if (!Number.isNaN(at) && at <= now) continue;
      }
      const roles = Array.isArray(p.roles) ? p.roles.filter((r) => typeof r === 'string') : [];
      if (roles.length === 0) {
        problems.push(`${label} has no roles; it grants nothing`);
        continue;
      }
      if (roles.every((r) => NON_READING_ROLE.test(r))) continue;

      let sets: GraphIdentitySet[];
      if (p.link) {
        // A sharing link grants only the people it was sent to / redeemed by, never its scope as such.
        sets = (p.grantedToIdentitiesV2 ?? p.grantedToIdentities ?? []).filter(isObject);
        if (sets.length === 0) continue;
      } else {
        const direct = p.grantedToV2 ?? p.grantedTo;
        sets = [direct, ...(p.grantedToIdentitiesV2 ?? p.grantedToIdentities ?? [])].filter(isObject);
        if (sets.length === 0) {
          problems.push(`${label} names no grantee; it grants nothing`);
          continue;
        }
      }
      for (const set of sets) {
        for (const r of await this.identity(set, label)) {
          if ('principal' in r) {
            principals.add(r.principal);
            if (r.groupId) groupIds.add(r.groupId);
          } else problems.push(r.problem);
        }
      }
    }
    return { principals: [...principals].sort(), problems, groupIds: [...groupIds].sort() };
  }

  private async identity(set: GraphIdentitySet, label: string): Promise<Resolution[]> {
    if (isObject(set.siteGroup) && !isObject(set.user) && !isObject(set.group)) {
      const name = set.siteGroup.displayName ?? set.siteGroup.loginName ?? '';
      const declared = this.siteGroups.get(name.trim().toLowerCase());
      if (declared) {
        return declared.map((m) => (m.includes('@') ? { principal: `user:${m.trim().toLowerCase()}` } : this.group(m.trim())));
      }
    }
    return [await this.single(set, label)];
  }

  private async single(set: GraphIdentitySet, label: string): Promise<Resolution> {
    // A SharePoint user entry usually carries both `user` (Entra) and `siteUser` (claims login).
    if (isObject(set.user)) {
      const email = set.user.email?.trim();
      if (email && EMAIL.test(email)) return { principal: `user:${email.toLowerCase()}` };
      if (set.user.id) {
        const looked = await this.lookupUserEmail(set.user.id);
        if (looked && EMAIL.test(looked)) return { principal: `user:${looked.toLowerCase()}` };
        return { problem: `${label}: user ${set.user.id} has no resolvable email; it grants nothing` };
      }
      if (set.siteUser?.loginName) return this.fromLoginName(set.siteUser.loginName, label);
      return { problem: `${label}: user "${set.user.displayName ?? '?'}" has neither email nor id; it grants nothing` };
    }
    if (isObject(set.group)) {
      if (!set.group.id) return { problem: `${label}: group "${set.group.displayName ?? '?'}" has no id; it grants nothing` };
      return this.group(set.group.id);
    }
    if (isObject(set.siteUser)) {
      if (!set.siteUser.loginName) return { problem: `${label}: SharePoint user without loginName; it grants nothing` };
      return this.fromLoginName(set.siteUser.loginName, label);
    }
    if (isObject(set.siteGroup)) {
      // Graph v1.0 has no endpoint for SharePoint group membership (only the SharePoint REST API
      // has), so unless the admin declared its members (siteGroupMembers), fail closed.
      return {
        problem: `${label}: SharePoint group "${set.siteGroup.displayName ?? set.siteGroup.loginName ?? set.siteGroup.id ?? '?'}" ` +
          `(id ${set.siteGroup.id ?? '?'}) cannot be expanded through Microsoft Graph and is not in siteGroupMembers; it grants nothing`,
      };
    }
    const kinds = Object.keys(set).filter((k) => !k.startsWith('@')).join(', ') || 'empty identity';
    return { problem: `${label}: unsupported grantee (${kinds}); it grants nothing` };
  }

  private group(id: string): { principal: string; groupId: string } {
    return { principal: `sgroup:${this.sourceId}/${id}`, groupId: id };
  }

  /**
   * SharePoint claims logins: `i:0#.f|membership|alice@acme.test` (a member), `c:0t.c|tenant|<id>`
   * (an Entra security group), `c:0o.c|federateddirectoryclaimprovider|<id>` (an M365 group;
   * `<id>_o` is its owners). "Everyone" and "Everyone except external users" are organisation-wide
   * claims, which the contract never treats as a grant.
   */
  private fromLoginName(login: string, label: string): Resolution {
    const parts = login.split('|');
    const last = parts[parts.length - 1] ?? '';
    if (/^i:0[#h]\.f$/i.test(parts[0] ?? '') || /membership/i.test(parts[1] ?? '')) {
      if (EMAIL.test(last)) return { principal: `user:${last.toLowerCase()}` };
    }
    if (/^c:0t\.c$/i.test(parts[0] ?? '') && /^[0-9a-f-]{36}$/i.test(last)) return this.group(last);
    if (/^c:0o\.c$/i.test(parts[0] ?? '') && /^[0-9a-f-]{36}$/i.test(last)) return this.group(last);
    if (/spo-grid-all-users|^c:0\(\.s\|true$/i.test(login)) {
      return { problem: `${label}: organisation-wide claim "${login}" grants nothing` };
    }
    return { problem: `${label}: unrecognised SharePoint login "${login}"; it grants nothing` };
  }
}

function isObject<T>(v: T | null | undefined): v is T & object {
  return typeof v === 'object' && v !== null;
}

import { sourceGroupPrincipal, userPrincipal } from '../../access/principals.ts';
import type { ResolvedAcl } from '../interface.ts';
import { classifySiteUser, ownersKey, siteGroupKey, type SiteRef } from './sitegroups.ts';

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
  /** Source groups referenced (Entra group ids, SharePoint group keys), whose memberships groups() must sync. */
  groupIds: string[];
}

/**
 * Why a SharePoint group grant cannot be expanded with a client secret. One wording per group, so
 * the run's warning counts the documents it affects.
 */
export function siteGroupNeedsCertificate(name: string): string {
  return `SharePoint group "${name}" grants nothing: its members can only be read through SharePoint's REST API, which accepts ` +
    'certificate credentials only (add a certificate to the source\'s credentials, or declare the group in siteGroupMembers)';
}

type Resolution = { principal: string; groupId?: string } | { problem: string };

export type UserEmailLookup = (userId: string) => Promise<string | null>;

/** "Limited Access" is what SharePoint grants on parents of a shared item: it does not open the folder. */
const NON_READING_ROLE = /limited\s*access|limitedaccess/i;

const EMAIL = /^[^\s@|]+@[^\s@|]+$/;

export class PermissionMapper {
  private readonly siteGroups: Map<string, string[]>;
  /** Display names of the SharePoint groups met, by source-group id (for warnings). */
  readonly siteGroupNames = new Map<string, string>();

  constructor(
    private readonly sourceId: string,
    private readonly lookupUserEmail: UserEmailLookup,
    /** Admin-declared members of SharePoint groups, keyed by display name (case-insensitive). */
    siteGroupMembers: Record<string, string[]> = {},
    /** Certificate credentials: SharePoint group members can be read, so such grants resolve. */
    private readonly siteGroupsReadable = false,
  ) {
    this.siteGroups = new Map(Object.entries(siteGroupMembers).map(([k, v]) => [k.trim().toLowerCase(), v]));
  }

  /** `site`: where the item's library lives, whose SharePoint groups its permissions may name. */
  async map(permissions: GraphPermission[], site?: SiteRef | null, now = Date.now()): Promise<MappedAcl> {
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
        for (const r of await this.identity(set, label, site ?? null)) {
          if ('principal' in r) {
            principals.add(r.principal);
            if (r.groupId) groupIds.add(r.groupId);
          } else problems.push(r.problem);
        }
      }
    }
    return { principals: [...principals].sort(), problems, groupIds: [...groupIds].sort() };
  }

  private async identity(set: GraphIdentitySet, label: string, site: SiteRef | null): Promise<Resolution[]> {
    if (isObject(set.siteGroup) && !isObject(set.user) && !isObject(set.group)) {
      const name = set.siteGroup.displayName ?? set.siteGroup.loginName ?? '';
      const declared = this.siteGroups.get(name.trim().toLowerCase());
      if (declared) {
        return declared.map((m) => (m.includes('@') ? this.user(m, `${label}: declared member "${m}" of "${name}"`) : this.group(m.trim())));
      }
      return this.siteGroup(set.siteGroup, label, site);
    }
    return [await this.single(set, label)];
  }

  /**
   * A SharePoint group becomes a source group like an Entra group, so membership changes never
   * touch the document. With a client secret its members cannot be read: the principal is kept
   * (so adding a certificate later needs no re-permissioning) but gets no members, and the grant
   * is reported.
   */
  private siteGroup(g: GraphIdentity, label: string, site: SiteRef | null): Resolution[] {
    const name = g.displayName ?? g.loginName ?? g.id ?? '?';
    if (!site || !g.id || !/^\d+$/.test(g.id)) {
      return [{ problem: `${label}: SharePoint group "${name}" (id ${g.id ?? '?'}) cannot be located on a site; it grants nothing` }];
    }
    const key = siteGroupKey(site.collectionId, g.id);
    this.siteGroupNames.set(key, name);
    const resolved = this.group(key);
    return this.siteGroupsReadable ? [resolved] : [resolved, { problem: siteGroupNeedsCertificate(name) }];
  }

  private async single(set: GraphIdentitySet, label: string): Promise<Resolution> {
    // A SharePoint user entry usually carries both `user` (Entra) and `siteUser` (claims login).
    if (isObject(set.user)) {
      const email = set.user.email?.trim();
      if (email && EMAIL.test(email)) return this.user(email, label);
      if (set.user.id) {
        const looked = await this.lookupUserEmail(set.user.id);
        return this.user(looked && EMAIL.test(looked) ? looked : '', `${label}: user ${set.user.id}`);
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
    const kinds = Object.keys(set).filter((k) => !k.startsWith('@')).join(', ') || 'empty identity';
    return { problem: `${label}: unsupported grantee (${kinds}); it grants nothing` };
  }

  /** Principals come from the shared constructors (src/access/principals.ts). */
  private user(email: string, what: string): Resolution {
    const principal = userPrincipal(email);
    return principal ? { principal } : { problem: `${what} has no resolvable email; it grants nothing` };
  }

  private group(id: string): Resolution {
    const principal = sourceGroupPrincipal(this.sourceId, id);
    return principal ? { principal, groupId: id } : { problem: `group "${id}" cannot be named for source ${this.sourceId}; it grants nothing` };
  }

  /** A SharePoint claims login, read the way a site group's member list is read. */
  private fromLoginName(login: string, label: string): Resolution {
    const m = classifySiteUser({ LoginName: login });
    if ('email' in m) return this.user(m.email, label);
    if ('group' in m) return this.group(m.group);
    if ('owners' in m) return this.group(ownersKey(m.owners));
    return { problem: `${label}: ${m.none.replace(/^unrecognised member/, 'unrecognised SharePoint login')}; it grants nothing` };
  }
}

function isObject<T>(v: T | null | undefined): v is T & object {
  return typeof v === 'object' && v !== null;
}

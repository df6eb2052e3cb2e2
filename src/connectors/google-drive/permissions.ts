import type { ResolvedAcl } from '../interface.ts';

/**
 * Drive `permission` resources → Clearance principals (contract §4, Google Drive row). This is the
 * one place this connector builds principal strings, so it can move to a shared module later.
 *
 * `permissions.list` answers a file's effective permissions: its own, those inherited from its
 * folders, and (for shared-drive items) the drive's members, each with `permissionDetails` saying
 * where it comes from. Any role reads, so inherited and direct grants count alike.
 *
 * Every grant that cannot be resolved grants nothing and leaves a `problems` entry; grants that by
 * definition reach nobody (link-only sharing, deleted accounts, pending owners, metadata-only
 * views, expired access) are dropped silently, as Drive itself gives them no read access to the
 * content.
 */

export interface DrivePermission {
  id?: string | null;
  type?: string | null;
  role?: string | null;
  emailAddress?: string | null;
  domain?: string | null;
  allowFileDiscovery?: boolean | null;
  deleted?: boolean | null;
  pendingOwner?: boolean | null;
  expirationTime?: string | null;
  view?: string | null;
  permissionDetails?: Array<{ permissionType?: string | null; role?: string | null; inherited?: boolean | null; inheritedFrom?: string | null }> | null;
}

export interface MappedAcl extends ResolvedAcl {
  principals: string[];
  problems: string[];
  /** Google group emails referenced, whose memberships groups() must sync. */
  groupEmails: string[];
}

/** Every Drive role can at least read the file's content. */
const READING_ROLES = new Set(['owner', 'organizer', 'fileorganizer', 'writer', 'commenter', 'reader']);
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const DOMAIN = /^[a-z0-9.-]+\.[a-z0-9-]+$/i;

export const userPrincipal = (email: string) => `user:${email.trim().toLowerCase()}`;
export const groupPrincipal = (sourceId: string, groupEmail: string) => `sgroup:${sourceId}/${groupEmail.trim().toLowerCase()}`;
export const domainPrincipal = (domain: string) => `domain:${domain.trim().toLowerCase()}`;
export const EVERYONE = 'everyone';

function roleOf(p: DrivePermission): string | null {
  if (typeof p.role === 'string' && p.role) return p.role;
  // Shared-drive answers may carry the role only per source (member of the drive, set on a folder…).
  const detail = (p.permissionDetails ?? []).find((d) => typeof d?.role === 'string' && d.role);
  return detail?.role ?? null;
}

export function mapPermissions(sourceId: string, permissions: DrivePermission[], now = Date.now()): MappedAcl {
  const principals = new Set<string>();
  const problems: string[] = [];
  const groups = new Set<string>();
  for (const p of permissions) {
    const label = `permission ${p.id ?? '(no id)'}`;
    if (p.deleted) continue;
    // A pending owner has been offered ownership and has not accepted it; the contract gives the offer nothing.
    if (p.pendingOwner) continue;
    // `view: "published"` reaches only a published copy; `view: "metadata"` shows no content at all.
    if (p.view) continue;
    if (p.expirationTime) {
      const at = Date.parse(p.expirationTime);
      if (!Number.isNaN(at) && at <= now) continue;
    }
    const role = roleOf(p);
    if (!role) {
      problems.push(`${label} has no role; it grants nothing`);
      continue;
    }
    if (!READING_ROLES.has(role.toLowerCase())) {
      problems.push(`${label} has unknown role "${role}"; it grants nothing`);
      continue;
    }
    switch (p.type) {
      case 'user':
      case 'group': {
        const email = p.emailAddress?.trim() ?? '';
        if (!EMAIL.test(email)) {
          problems.push(`${label}: ${p.type} without a usable email address; it grants nothing`);
          break;
        }
        if (p.type === 'user') principals.add(userPrincipal(email));
        else {
          principals.add(groupPrincipal(sourceId, email));
          groups.add(email.toLowerCase());
        }
        break;
      }
      case 'domain': {
        // Without discovery the domain only holds a link: people who have it may open the file,
        // nobody else finds it. Link-only sharing grants nothing.
        if (p.allowFileDiscovery !== true) break;
        const domain = p.domain?.trim() ?? '';
        if (!DOMAIN.test(domain)) {
          problems.push(`${label}: domain permission without a usable domain; it grants nothing`);
          break;
        }
        principals.add(domainPrincipal(domain));
        break;
      }
      case 'anyone':
        if (p.allowFileDiscovery === true) principals.add(EVERYONE);
        break;
      default:
        problems.push(`${label}: unsupported grantee type "${p.type ?? '?'}"; it grants nothing`);
    }
  }
  return { principals: [...principals].sort(), problems, groupEmails: [...groups].sort() };
}

export function toResolvedAcl(a: MappedAcl): ResolvedAcl {
  return a.problems.length ? { principals: a.principals, problems: a.problems } : { principals: a.principals };
}

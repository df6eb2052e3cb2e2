import { UpstreamError } from '../../errors.ts';
import type { Directory } from './directory.ts';
import type { SharePointRest } from './rest.ts';

/** The site (collection) a library belongs to: where its SharePoint groups are defined. */
export interface SiteRef {
  /** Web URL of the site, the base of its REST API. */
  url: string;
  /** Site collection id (a GUID). SharePoint group ids are numbers unique only within a collection. */
  collectionId: string;
}

const KEY = /^sp:([^:]+):(\d+)$/;

/** The source-group id of a SharePoint group: `sp:<site collection id>:<group id>`. */
export function siteGroupKey(collectionId: string, groupId: string | number): string {
  return `sp:${collectionId.toLowerCase()}:${groupId}`;
}

export function parseSiteGroupKey(key: string): { collectionId: string; groupId: number } | null {
  const m = KEY.exec(key);
  return m ? { collectionId: m[1]!, groupId: Number(m[2]) } : null;
}

export const isSiteGroupKey = (key: string): boolean => KEY.test(key);

/** The source-group id of a Microsoft 365 group's owners (a claims login `…|<id>_o`). */
export const ownersKey = (groupId: string): string => `${groupId}_o`;
/** The group whose owners an `ownersKey` names, or null. */
export const ownersOf = (key: string): string | null => /^([0-9a-f-]{36})_o$/i.exec(key)?.[1] ?? null;

/** A member of a SharePoint group as `…/sitegroups/GetById(n)/users` lists it (SP.User). */
export interface SiteUser {
  Id?: number;
  LoginName?: string | null;
  Title?: string | null;
  Email?: string | null;
  UserPrincipalName?: string | null;
  /** 1 user, 2 distribution list, 4 security group (Entra and Microsoft 365 groups too), 8 SharePoint group. */
  PrincipalType?: number;
}

export type SiteMember =
  | { email: string }
  /** An Entra security group or a Microsoft 365 group's members. */
  | { group: string }
  /** A Microsoft 365 group's owners (`…|<id>_o`, the Owners group of a group-connected site). */
  | { owners: string }
  | { none: string };

const EMAIL = /^[^\s@|]+@[^\s@|]+$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * SharePoint claims logins: `i:0#.f|membership|<upn>` (a member), `c:0t.c|tenant|<id>` (an Entra
 * security group), `c:0o.c|federateddirectoryclaimprovider|<id>` (a Microsoft 365 group; `<id>_o`
 * its owners). Organisation-wide claims ("Everyone", "Everyone except external users") are never
 * a grant (contract §4), and anything unrecognised grants nothing.
 */
export function classifySiteUser(u: SiteUser): SiteMember {
  const login = (u.LoginName ?? '').trim();
  const parts = login.split('|');
  const head = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (/spo-grid-all-users|^c:0\(\.s\|true$|^c:0!\.s\|windows$/i.test(login)) return { none: `organisation-wide claim "${login}"` };
  if (/^c:0t\.c$/i.test(head) && GUID.test(last)) return { group: last.toLowerCase() };
  if (/^c:0o\.c$/i.test(head)) {
    const m = /^([0-9a-f-]{36})(_o)?$/i.exec(last);
    if (m && GUID.test(m[1]!)) return m[2] ? { owners: m[1]!.toLowerCase() } : { group: m[1]!.toLowerCase() };
  }
  const isUser = u.PrincipalType === 1 || /^i:0[#h]\.f$/i.test(head);
  if (isUser) {
    for (const candidate of [u.Email, u.UserPrincipalName, /membership/i.test(parts[1] ?? '') ? last : undefined]) {
      const e = candidate?.trim().toLowerCase();
      if (e && EMAIL.test(e) && !e.includes('#ext#')) return { email: e };
    }
    return { none: `user "${u.Title ?? login}" has no email` };
  }
  return { none: `unrecognised member "${login || u.Title || '?'}"` };
}

/**
 * Members (emails) of SharePoint groups, read from the SharePoint REST API and expanded through
 * Graph: Entra groups and Microsoft 365 groups inside a site group count with all their users,
 * transitively. A group SharePoint no longer knows has no members.
 */
export class SiteGroupReader {
  constructor(private readonly rest: SharePointRest, private readonly directory: Directory) {}

  async members(site: SiteRef, groupId: number): Promise<{ emails: string[]; skipped: string[] }> {
    const emails = new Set<string>();
    const skipped: string[] = [];
    const url = `${site.url.replace(/\/+$/, '')}/_api/web/sitegroups/GetById(${groupId})/users`;
    try {
      for await (const page of this.rest.pages<SiteUser>(url)) {
        for (const u of page) {
          const m = classifySiteUser(u);
          if ('email' in m) emails.add(m.email);
          else if ('group' in m) for (const e of await this.directory.transitiveUsers(m.group)) emails.add(e);
          else if ('owners' in m) for (const e of await this.directory.groupOwners(m.owners)) emails.add(e);
          else skipped.push(m.none);
        }
      }
    } catch (err) {
      if (err instanceof UpstreamError && err.status === 404) return { emails: [], skipped };
      if (err instanceof UpstreamError && (err.status === 401 || err.status === 403)) {
        throw new UpstreamError(
          `SharePoint refused to list the members of group ${groupId} on ${site.url} (${err.message}); grant the app the SharePoint ` +
            'application permission Sites.Read.All (or Sites.Selected with read access to the site) and use certificate credentials',
          { retryable: false, status: err.status, cause: err },
        );
      }
      throw err;
    }
    return { emails: [...emails].sort(), skipped };
  }
}

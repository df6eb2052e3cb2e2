import { GraphError, type GraphApi } from './graph.ts';

const enc = encodeURIComponent;
const EMAIL = /^[^\s@|]+@[^\s@|]+$/;

interface DirectoryUser {
  mail?: string | null;
  userPrincipalName?: string | null;
}

/** `mail`, else `userPrincipalName`, lower-cased; null when neither is an address. */
export function userEmail(u: DirectoryUser): string | null {
  const e = (u.mail || u.userPrincipalName || '').trim().toLowerCase();
  return EMAIL.test(e) ? e : null;
}

const gone = (err: unknown) => err instanceof GraphError && (err.status === 404 || err.status === 400);

/**
 * Entra ID reads through Graph, each answer cached for one sync run:
 * many items name the same user, and many site groups contain the same Entra group.
 */
export class Directory {
  private readonly emails = new Map<string, Promise<string | null>>();
  private readonly members = new Map<string, Promise<string[]>>();
  private readonly owners = new Map<string, Promise<string[]>>();

  constructor(private readonly graph: GraphApi) {}

  /** A new sync run reads the directory afresh (memberships must be as of this run). */
  forget(): void {
    this.emails.clear();
    this.members.clear();
    this.owners.clear();
  }

  /** A user's email by object id; null when Graph does not know the user. */
  userEmail(id: string): Promise<string | null> {
    return cached(this.emails, id, async () => {
      try {
        return userEmail(await this.graph.get<DirectoryUser>(`/users/${enc(id)}?$select=mail,userPrincipalName`));
      } catch (err) {
        if (gone(err)) return null;
        throw err;
      }
    });
  }

  /** Every user in a security or Microsoft 365 group, through any depth of nesting; [] for a group Graph does not know. */
  transitiveUsers(groupId: string): Promise<string[]> {
    return cached(this.members, groupId, () => this.users(`/groups/${enc(groupId)}/transitiveMembers/microsoft.graph.user?$select=id,mail,userPrincipalName&$top=999`));
  }

  /** A Microsoft 365 group's owners (what a group-connected site's Owners group holds). */
  groupOwners(groupId: string): Promise<string[]> {
    return cached(this.owners, groupId, () => this.users(`/groups/${enc(groupId)}/owners/microsoft.graph.user?$select=id,mail,userPrincipalName&$top=999`));
  }

  private async users(url: string): Promise<string[]> {
    const emails = new Set<string>();
    try {
      for await (const page of this.graph.pages<DirectoryUser>(url)) {
        for (const u of page.value ?? []) {
          const e = userEmail(u);
          if (e) emails.add(e);
        }
      }
    } catch (err) {
      if (!gone(err)) throw err;
    }
    return [...emails].sort();
  }
}

/** One request per key; a failure is not cached, so a later caller tries again. */
function cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = load();
    p.catch(() => map.delete(key));
    map.set(key, p);
  }
  return p;
}

import type { GoogleApi } from './api.ts';
import { GoogleApiError } from './api.ts';

interface DirectMembers {
  users: string[];
  groups: string[];
}

/**
 * Transitive user members of Google groups through the Directory API (`members.list`, one listing
 * per group per run, shared by every group that nests it). Groups may nest each other in cycles;
 * each is expanded once per walk.
 *
 * A group the Directory does not know (deleted, or a group of another organisation) has no
 * members: fail closed. A Directory that refuses the admin altogether is a configuration error
 * and fails the run rather than silently emptying every group.
 */
export class GroupExpander {
  private readonly direct = new Map<string, Promise<DirectMembers | null>>();
  /** Problems worth a run warning (unknown groups, members of a type that cannot be listed). */
  readonly notes: string[] = [];

  constructor(private readonly api: GoogleApi, private readonly domain: string) {}

  async transitiveUsers(groupEmail: string): Promise<string[]> {
    const users = new Set<string>();
    const seen = new Set<string>();
    const stack = [groupEmail.toLowerCase()];
    while (stack.length) {
      const g = stack.pop()!;
      if (seen.has(g)) continue;
      seen.add(g);
      const d = await this.members(g);
      if (!d) continue;
      for (const u of d.users) users.add(u);
      for (const sub of d.groups) if (!seen.has(sub)) stack.push(sub);
    }
    return [...users].sort();
  }

  private members(groupEmail: string): Promise<DirectMembers | null> {
    let p = this.direct.get(groupEmail);
    if (!p) {
      p = this.list(groupEmail);
      p.catch(() => this.direct.delete(groupEmail));
      this.direct.set(groupEmail, p);
    }
    return p;
  }

  private async list(groupEmail: string): Promise<DirectMembers | null> {
    const out: DirectMembers = { users: [], groups: [] };
    const external = !groupEmail.endsWith(`@${this.domain}`) && !groupEmail.endsWith(`.${this.domain}`);
    let pageToken: string | undefined;
    try {
      do {
        const page = await this.api.call(`Directory members of ${groupEmail}`, this.api.adminEmail, () =>
          this.api.directory().members.list({ groupKey: groupEmail, maxResults: 200, pageToken }, this.api.options()));
        for (const m of page.members ?? []) {
          const email = m.email?.trim().toLowerCase();
          if (m.type === 'GROUP' && email) out.groups.push(email);
          else if (m.type === 'USER' && email && m.status !== 'SUSPENDED') out.users.push(email);
          else if (m.type === 'CUSTOMER') this.notes.push(`group ${groupEmail} contains the whole organisation, which is not expanded; those users get nothing through it`);
        }
        pageToken = page.nextPageToken ?? undefined;
      } while (pageToken);
    } catch (err) {
      if (err instanceof GoogleApiError && (err.status === 404 || (external && (err.status === 403 || err.status === 400)))) {
        this.notes.push(`group ${groupEmail} is unknown to the Directory; it grants nothing`);
        return null;
      }
      throw err;
    }
    return out;
  }
}

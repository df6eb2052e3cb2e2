import { sourceGroupPrincipal, type Principal } from '../access/index.ts';
import type { GroupMembership, GroupStore } from './interface.ts';
import { SqlAggregate, batches } from './sql.ts';

export class SqlGroupStore extends SqlAggregate implements GroupStore {
  async replace(sourceId: string, groups: { groupId: string; memberEmails: string[]; memberGroupIds?: string[] }[]): Promise<void> {
    const pairs = new Map<string, [string, string]>();
    for (const g of groups) {
      for (const email of g.memberEmails) {
        const e = email.trim().toLowerCase();
        if (e) pairs.set(`${g.groupId}\u0000${e}`, [g.groupId, e]);
      }
    }
    const rows = [...pairs.values()];
    const edges = new Map<string, [string, string]>();
    for (const g of groups) for (const m of g.memberGroupIds ?? []) if (m !== g.groupId) edges.set(`${g.groupId}\u0000${m}`, [g.groupId, m]);
    await this.db.transaction(async (tx) => {
      await tx.query('DELETE FROM source_group_nesting WHERE source_id = $1', [sourceId]);
      for (const batch of batches([...edges.values()], 5000)) {
        await tx.query(
          `INSERT INTO source_group_nesting (source_id, group_id, member_group_id)
           SELECT $1, g, m FROM unnest($2::text[], $3::text[]) AS t(g, m)`,
          [sourceId, batch.map((r) => r[0]), batch.map((r) => r[1])],
        );
      }
      await tx.query('DELETE FROM source_groups WHERE source_id = $1', [sourceId]);
      for (const batch of batches(rows, 5000)) {
        await tx.query(
          `INSERT INTO source_groups (source_id, group_id, member_email)
           SELECT $1, g, m FROM unnest($2::text[], $3::text[]) AS t(g, m)`,
          [sourceId, batch.map((r) => r[0]), batch.map((r) => r[1])],
        );
      }
    });
  }

  async principalsOf(email: string | null): Promise<Principal[]> {
    if (email === null) return [];
    const rows = await this.db.query<{ source_id: string; group_id: string }>(
      `SELECT DISTINCT source_id, group_id FROM source_groups WHERE member_email = $1 ORDER BY source_id, group_id`,
      [email.trim().toLowerCase()],
    );
    return rows.map((r) => sourceGroupPrincipal(r.source_id, r.group_id)).filter((p): p is Principal => p !== null);
  }

  async ids(sourceId: string): Promise<string[]> {
    const rows = await this.db.query<{ group_id: string }>(
      'SELECT DISTINCT group_id FROM source_groups WHERE source_id = $1 ORDER BY group_id', [sourceId]);
    return rows.map((r) => r.group_id);
  }

  async membershipsOf(email: string | null): Promise<GroupMembership[]> {
    if (email === null) return [];
    const e = email.trim().toLowerCase();
    const rows = await this.db.query<{ source_id: string; group_id: string }>(
      'SELECT DISTINCT source_id, group_id FROM source_groups WHERE member_email = $1 ORDER BY source_id, group_id', [e]);
    const edges = await this.db.query<{ source_id: string; group_id: string; member_group_id: string }>(
      `SELECT n.source_id, n.group_id, n.member_group_id FROM source_group_nesting n
       JOIN source_groups m ON m.source_id = n.source_id AND m.group_id = n.member_group_id AND m.member_email = $1
       ORDER BY n.source_id, n.group_id, n.member_group_id`, [e]);
    // Nested groups that also contain the user, per group: the steps of a chain down to the user.
    const children = new Map<string, string[]>();
    for (const r of edges) {
      const k = `${r.source_id}/${r.group_id}`;
      children.set(k, [...(children.get(k) ?? []), r.member_group_id]);
    }
    const out: GroupMembership[] = [];
    for (const r of rows) {
      const principal = sourceGroupPrincipal(r.source_id, r.group_id);
      if (principal === null) continue;
      // Follow nested groups that contain the user until one has none: that one holds the user directly.
      const chain: string[] = [];
      const seen = new Set([r.group_id]);
      let at = r.group_id;
      for (;;) {
        const next = (children.get(`${r.source_id}/${at}`) ?? []).find((c) => !seen.has(c));
        if (next === undefined) break;
        seen.add(next);
        chain.push(next);
        at = next;
      }
      out.push({ principal, via: chain.reverse().map((g) => sourceGroupPrincipal(r.source_id, g)).filter((p): p is Principal => p !== null) });
    }
    return out;
  }

  async members(sourceId: string, groupId: string): Promise<string[]> {
    const rows = await this.db.query<{ member_email: string }>(
      'SELECT member_email FROM source_groups WHERE source_id = $1 AND group_id = $2 ORDER BY member_email', [sourceId, groupId]);
    return rows.map((r) => r.member_email);
  }
}

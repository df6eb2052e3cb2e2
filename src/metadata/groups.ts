import { sourceGroupPrincipal, type Principal } from '../access/index.ts';
import type { GroupStore } from './interface.ts';
import { SqlAggregate, batches } from './sql.ts';

export class SqlGroupStore extends SqlAggregate implements GroupStore {
  async replace(sourceId: string, groups: { groupId: string; memberEmails: string[] }[]): Promise<void> {
    const pairs = new Map<string, [string, string]>();
    for (const g of groups) {
      for (const email of g.memberEmails) {
        const e = email.trim().toLowerCase();
        if (e) pairs.set(`${g.groupId}\u0000${e}`, [g.groupId, e]);
      }
    }
    const rows = [...pairs.values()];
    await this.db.transaction(async (tx) => {
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
}

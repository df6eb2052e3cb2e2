import { randomUUID } from 'node:crypto';
import type { AuditQuery, AuditRecord, AuditStore } from './interface.ts';
import { Conditions, SqlAggregate, iso, str, strings, toDate, type Row } from './sql.ts';

function mapAudit(r: Row): AuditRecord {
  return {
    id: String(r.id),
    at: toDate(r.at),
    user: str(r.user_name),
    agent: str(r.agent),
    action: String(r.action),
    query: str(r.query),
    documentIds: strings(r.document_ids),
    requestId: str(r.request_id),
  };
}

export class SqlAuditStore extends SqlAggregate implements AuditStore {
  async append(rec: Omit<AuditRecord, 'id' | 'at'> & { at?: Date }): Promise<void> {
    await this.db.query(
      `INSERT INTO audit (id, at, user_name, agent, action, query, document_ids, request_id)
       VALUES ($1, COALESCE($2::timestamptz, now()), $3, $4, $5, $6, $7, $8)`,
      [randomUUID(), iso(rec.at), rec.user, rec.agent, rec.action, rec.query, rec.documentIds ?? [], rec.requestId],
    );
  }

  async search(q: AuditQuery): Promise<AuditRecord[]> {
    const c = new Conditions()
      .add((p) => `lower(user_name) = lower(${p})`, q.user || undefined)
      .add((p) => `agent = ${p}`, q.agent || undefined)
      .add((p) => `at >= ${p}::timestamptz`, q.from ? iso(q.from) : undefined)
      .add((p) => `at <= ${p}::timestamptz`, q.to ? iso(q.to) : undefined);
    const limit = c.param(Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100))));
    const rows = await this.db.query(`SELECT * FROM audit ${c.where()} ORDER BY at DESC, id DESC LIMIT ${limit}`, c.params);
    return rows.map(mapAudit);
  }
}

import type { KillSwitchStore, Quarantine } from './interface.ts';
import { SqlAggregate, str, toDate, type Row } from './sql.ts';

function mapQuarantine(r: Row): Quarantine {
  return {
    // The current row's id when the document is indexed again under a new id after a delete.
    documentId: String(r.current_id ?? r.document_id),
    sourceId: String(r.source_id), externalId: String(r.external_id),
    reason: String(r.reason), actor: str(r.actor), at: toDate(r.at),
  };
}

const SELECT = `SELECT q.*, d.id AS current_id FROM document_quarantine q
  LEFT JOIN documents d ON d.source_id = q.source_id AND d.external_id = q.external_id`;

export class SqlKillSwitchStore extends SqlAggregate implements KillSwitchStore {
  async hidden(): Promise<{ sourceIds: string[]; documentIds: string[] }> {
    const rows = await this.db.query<{ k: string; id: string }>(
      `SELECT 's' AS k, id FROM sources WHERE NOT enabled
       UNION ALL
       SELECT 'd' AS k, d.id FROM document_quarantine q JOIN documents d ON d.source_id = q.source_id AND d.external_id = q.external_id`, []);
    return { sourceIds: rows.filter((r) => r.k === 's').map((r) => r.id), documentIds: rows.filter((r) => r.k === 'd').map((r) => r.id) };
  }

  async quarantine(doc: { id: string; sourceId: string; externalId: string }, reason: string, actor: string | null): Promise<Quarantine> {
    await this.db.query(
      `INSERT INTO document_quarantine (source_id, external_id, document_id, reason, actor) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (source_id, external_id) DO UPDATE SET reason = EXCLUDED.reason, actor = EXCLUDED.actor, document_id = EXCLUDED.document_id`,
      [doc.sourceId, doc.externalId, doc.id, reason, actor]);
    return (await this.quarantineOf(doc.id))!;
  }

  async release(documentId: string): Promise<boolean> {
    const rows = await this.db.query(
      `DELETE FROM document_quarantine q WHERE q.document_id = $1
          OR EXISTS (SELECT 1 FROM documents d WHERE d.id = $1 AND d.source_id = q.source_id AND d.external_id = q.external_id)
       RETURNING q.source_id`, [documentId]);
    return rows.length > 0;
  }

  async quarantineOf(documentId: string): Promise<Quarantine | null> {
    const rows = await this.db.query(`${SELECT} WHERE d.id = $1 OR (d.id IS NULL AND q.document_id = $1) LIMIT 1`, [documentId]);
    return rows[0] ? mapQuarantine(rows[0]) : null;
  }

  async quarantined(): Promise<Quarantine[]> {
    return (await this.db.query(`${SELECT} ORDER BY q.at, q.source_id, q.external_id`, [])).map(mapQuarantine);
  }
}

import { randomUUID } from 'node:crypto';
import { conflict } from '../errors.ts';
import type { FreshnessPolicy, Source } from '../types.ts';
import type { NewSource, SourcePatch, SourceStore } from './interface.ts';
import { Assignments, SqlAggregate, isUniqueViolation, json, toDate, toJson, type Row } from './sql.ts';

function mapSource(r: Row): Source {
  return {
    id: String(r.id),
    name: String(r.name),
    type: r.type as Source['type'],
    config: toJson<Record<string, unknown>>(r.config) ?? {},
    schedule: r.schedule == null ? null : toJson<{ intervalSeconds: number }>(r.schedule),
    freshness: r.freshness == null ? null : toJson<FreshnessPolicy>(r.freshness),
    status: r.status as Source['status'],
    enabled: r.enabled !== false,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

export class SqlSourceStore extends SqlAggregate implements SourceStore {
  async create(input: NewSource): Promise<Source> {
    try {
      const rows = await this.db.query(
        `INSERT INTO sources (id, name, type, config, credentials_encrypted, schedule, freshness)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [randomUUID(), input.name, input.type, JSON.stringify(input.config ?? {}), input.credentialsEncrypted,
          json(input.schedule), json(input.freshness)],
      );
      return mapSource(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, 'sources_name_key')) throw conflict(`A source named "${input.name}" already exists`);
      throw err;
    }
  }

  async get(id: string): Promise<Source | null> {
    const rows = await this.db.query('SELECT * FROM sources WHERE id = $1', [id]);
    return rows[0] ? mapSource(rows[0]) : null;
  }

  async list(): Promise<Source[]> {
    const rows = await this.db.query('SELECT * FROM sources ORDER BY created_at, id', []);
    return rows.map(mapSource);
  }

  async update(id: string, patch: SourcePatch): Promise<Source | null> {
    const a = new Assignments(id)
      .set('name', patch.name)
      .set('config', patch.config === undefined ? undefined : JSON.stringify(patch.config))
      .set('credentials_encrypted', patch.credentialsEncrypted)
      .set('schedule', patch.schedule === undefined ? undefined : json(patch.schedule))
      .set('freshness', patch.freshness === undefined ? undefined : json(patch.freshness))
      .set('status', patch.status)
      .set('enabled', patch.enabled)
      .raw('updated_at = now()');
    try {
      const rows = await this.db.query(`UPDATE sources SET ${a} WHERE id = $1 RETURNING *`, a.params);
      return rows[0] ? mapSource(rows[0]) : null;
    } catch (err) {
      if (isUniqueViolation(err, 'sources_name_key')) throw conflict(`A source named "${patch.name}" already exists`);
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    // Documents, runs, cursor, groups (and later tables keyed by source) go with it via ON DELETE CASCADE.
    await this.db.query('DELETE FROM sources WHERE id = $1', [id]);
  }

  async credentials(id: string): Promise<string | null> {
    const rows = await this.db.query<{ credentials_encrypted: string | null }>(
      'SELECT credentials_encrypted FROM sources WHERE id = $1', [id]);
    return rows[0]?.credentials_encrypted ?? null;
  }

  async cursor(sourceId: string): Promise<string | null> {
    const rows = await this.db.query<{ cursor: string }>('SELECT cursor FROM sync_cursors WHERE source_id = $1', [sourceId]);
    return rows[0]?.cursor ?? null;
  }

  async setCursor(sourceId: string, cursor: string | null): Promise<void> {
    if (cursor === null) {
      await this.db.query('DELETE FROM sync_cursors WHERE source_id = $1', [sourceId]);
      return;
    }
    await this.db.query(
      `INSERT INTO sync_cursors (source_id, cursor, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (source_id) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`,
      [sourceId, cursor],
    );
  }
}

import { randomUUID } from 'node:crypto';
import { conflict } from '../errors.ts';
import type { Agent, AgentStore } from './interface.ts';
import { SqlAggregate, iso, isUniqueViolation, strings, toDate, toDateOrNull, type Row } from './sql.ts';

function mapAgent(r: Row): Agent {
  return {
    id: String(r.id), name: String(r.name), sourceIds: strings(r.source_ids), createdAt: toDate(r.created_at),
    expiresAt: toDateOrNull(r.expires_at), revokedAt: toDateOrNull(r.revoked_at),
  };
}

export class SqlAgentStore extends SqlAggregate implements AgentStore {
  async create(name: string, keyHash: string, sourceIds: string[], expiresAt: Date | null = null): Promise<Agent> {
    try {
      const rows = await this.db.query(
        'INSERT INTO agents (id, name, key_hash, source_ids, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [randomUUID(), name, keyHash, sourceIds, iso(expiresAt)],
      );
      return mapAgent(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err, 'agents_key_hash_key')) throw conflict('An agent with this key already exists');
      throw err;
    }
  }

  async byKeyHash(keyHash: string): Promise<Agent | null> {
    const rows = await this.db.query('SELECT * FROM agents WHERE key_hash = $1', [keyHash]);
    return rows[0] ? mapAgent(rows[0]) : null;
  }

  async get(id: string): Promise<Agent | null> {
    const rows = await this.db.query('SELECT * FROM agents WHERE id = $1', [id]);
    return rows[0] ? mapAgent(rows[0]) : null;
  }

  async list(): Promise<Agent[]> {
    const rows = await this.db.query('SELECT * FROM agents ORDER BY created_at, id', []);
    return rows.map(mapAgent);
  }

  async setExpiry(id: string, expiresAt: Date | null): Promise<Agent | null> {
    const rows = await this.db.query('UPDATE agents SET expires_at = $2 WHERE id = $1 RETURNING *', [id, iso(expiresAt)]);
    return rows[0] ? mapAgent(rows[0]) : null;
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.db.query('UPDATE agents SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
    return rows.length > 0;
  }
}

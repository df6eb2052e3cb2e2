import { randomUUID } from 'node:crypto';
import { conflict } from '../errors.ts';
import type { Agent, AgentStore } from './interface.ts';
import { SqlAggregate, isUniqueViolation, strings, toDate, type Row } from './sql.ts';

function mapAgent(r: Row): Agent {
  return { id: String(r.id), name: String(r.name), sourceIds: strings(r.source_ids), createdAt: toDate(r.created_at) };
}

export class SqlAgentStore extends SqlAggregate implements AgentStore {
  async create(name: string, keyHash: string, sourceIds: string[]): Promise<Agent> {
    try {
      const rows = await this.db.query(
        'INSERT INTO agents (id, name, key_hash, source_ids) VALUES ($1, $2, $3, $4) RETURNING *',
        [randomUUID(), name, keyHash, sourceIds],
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

  async list(): Promise<Agent[]> {
    const rows = await this.db.query('SELECT * FROM agents ORDER BY created_at, id', []);
    return rows.map(mapAgent);
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.db.query('DELETE FROM agents WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }
}

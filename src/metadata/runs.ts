import { randomUUID } from 'node:crypto';
import { emptyStats, type Run, type RunMode } from '../types.ts';
import type { RunPatch, RunStore } from './interface.ts';
import { Assignments, SqlAggregate, iso, str, toDate, toDateOrNull, toJson, type Row } from './sql.ts';

function mapRun(r: Row): Run {
  return {
    id: String(r.id),
    sourceId: String(r.source_id),
    mode: r.mode as RunMode,
    status: r.status as Run['status'],
    createdAt: toDate(r.created_at),
    startedAt: toDateOrNull(r.started_at),
    finishedAt: toDateOrNull(r.finished_at),
    error: str(r.error),
    // Merged over zeros so counters added to RunStats later read as 0 on old rows.
    stats: { ...emptyStats(), ...(toJson<Partial<Run['stats']>>(r.stats) ?? {}) },
    warnings: toJson<string[]>(r.warnings) ?? [],
    notifiedAt: toDateOrNull(r.notified_at),
  };
}

export class SqlRunStore extends SqlAggregate implements RunStore {
  async start(sourceId: string, mode: RunMode): Promise<{ run: Run; created: boolean }> {
    // The partial unique index runs_one_active_idx makes "is one active? else create" atomic
    // across processes: a second insert does nothing and the existing run is returned.
    for (let attempt = 0; attempt < 5; attempt++) {
      const rows = await this.db.query(
        `INSERT INTO runs (id, source_id, mode, status, stats, warnings)
         VALUES ($1, $2, $3, 'queued', $4, '[]'::jsonb)
         ON CONFLICT (source_id) WHERE status IN ('queued', 'running') DO NOTHING
         RETURNING *`,
        [randomUUID(), sourceId, mode, JSON.stringify(emptyStats())],
      );
      if (rows[0]) return { run: mapRun(rows[0]), created: true };
      const active = await this.active(sourceId);
      // The active run finished between the insert and the read: try again.
      if (active) return { run: active, created: false };
    }
    throw new Error(`could not start a run for source ${sourceId}: its active run keeps changing`);
  }

  async get(id: string): Promise<Run | null> {
    const rows = await this.db.query('SELECT * FROM runs WHERE id = $1', [id]);
    return rows[0] ? mapRun(rows[0]) : null;
  }

  async list(sourceId: string, limit = 50): Promise<Run[]> {
    const n = Math.min(1000, Math.max(1, Math.floor(limit)));
    const rows = await this.db.query(
      'SELECT * FROM runs WHERE source_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2', [sourceId, n]);
    return rows.map(mapRun);
  }

  async update(id: string, patch: RunPatch): Promise<Run | null> {
    const a = new Assignments(id)
      .set('status', patch.status)
      .set('mode', patch.mode)
      .set('started_at', patch.startedAt === undefined ? undefined : iso(patch.startedAt))
      .set('finished_at', patch.finishedAt === undefined ? undefined : iso(patch.finishedAt))
      .set('error', patch.error)
      .set('stats', patch.stats === undefined ? undefined : JSON.stringify(patch.stats))
      .set('warnings', patch.warnings === undefined ? undefined : JSON.stringify(patch.warnings));
    if (a.empty) return this.get(id);
    const rows = await this.db.query(`UPDATE runs SET ${a} WHERE id = $1 RETURNING *`, a.params);
    return rows[0] ? mapRun(rows[0]) : null;
  }

  async active(sourceId: string): Promise<Run | null> {
    const rows = await this.db.query(
      `SELECT * FROM runs WHERE source_id = $1 AND status IN ('queued', 'running')
       ORDER BY created_at DESC, id DESC LIMIT 1`,
      [sourceId],
    );
    return rows[0] ? mapRun(rows[0]) : null;
  }
}

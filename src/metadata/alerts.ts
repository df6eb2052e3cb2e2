import { randomUUID } from 'node:crypto';
import type {
  Alert, AlertCount, AlertEvent, AlertFacts, AlertKind, AlertQuery, AlertStatus, AlertStore, AlertWrites, EventType, NewEvent, OutboxItem, OutboxState,
} from '../freshness/ports.ts';
import type { SqlDriver } from './interface.ts';
import { iso, num, str, toDate, toDateOrNull, type Row } from './sql.ts';

/** The freshness store port (src/freshness/ports.ts) over the metadata database. */

const obj = (v: unknown): Record<string, unknown> | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? (JSON.parse(v) as Record<string, unknown>) : (v as Record<string, unknown>);

function mapAlert(r: Row): Alert {
  return {
    id: String(r.id),
    kind: r.kind as AlertKind,
    sourceId: String(r.source_id),
    documentId: str(r.document_id),
    subject: String(r.subject),
    title: String(r.title),
    url: str(r.url),
    owner: str(r.owner),
    lastModified: toDateOrNull(r.last_modified),
    expectedMaxAgeDays: num(r.expected_max_age_days),
    ageDays: num(r.age_days),
    status: r.status as AlertStatus,
    firstFlaggedAt: toDate(r.first_flagged_at),
    lastEvaluatedAt: toDate(r.last_evaluated_at),
    acknowledgedAt: toDateOrNull(r.acknowledged_at),
    acknowledgedBy: str(r.acknowledged_by),
    note: str(r.ack_note),
    snoozedUntil: toDateOrNull(r.snoozed_until),
    resolvedAt: toDateOrNull(r.resolved_at),
    resolution: str(r.resolution),
    details: obj(r.details),
  };
}

function mapEvent(r: Row): AlertEvent {
  return {
    id: String(r.id),
    alertId: String(r.alert_id),
    sourceId: String(r.source_id),
    type: r.type as EventType,
    at: toDate(r.at),
    actor: str(r.actor),
    note: str(r.note),
    details: obj(r.details),
  };
}

/** Column arrays for unnest(): one statement per batch instead of one per row. */
function factColumns(facts: AlertFacts[]) {
  return [
    facts.map((f) => f.sourceId),
    facts.map((f) => f.documentId),
    facts.map((f) => f.subject),
    facts.map((f) => f.title),
    facts.map((f) => f.url),
    facts.map((f) => f.owner),
    facts.map((f) => iso(f.lastModified)),
    facts.map((f) => f.expectedMaxAgeDays),
    facts.map((f) => f.ageDays),
    facts.map((f) => (f.details ? JSON.stringify(f.details) : null)),
  ];
}

export class SqlAlertStore implements AlertStore {
  constructor(private readonly db: SqlDriver) {}

  atomically<T>(fn: (tx: AlertWrites) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new SqlAlertStore(tx)));
  }

  async live(kind: AlertKind, subjects: string[]): Promise<Map<string, Alert>> {
    if (subjects.length === 0) return new Map();
    const rows = await this.db.query(
      `SELECT * FROM alerts WHERE kind = $1 AND subject = ANY($2::text[]) AND status <> 'resolved'`, [kind, subjects]);
    return new Map(rows.map((r) => [String(r.subject), mapAlert(r)]));
  }

  async open(kind: AlertKind, facts: AlertFacts[], now: Date): Promise<Alert[]> {
    if (facts.length === 0) return [];
    const rows = await this.db.query(
      `INSERT INTO alerts (id, kind, source_id, document_id, subject, title, url, owner, last_modified,
                           expected_max_age_days, age_days, details, status, first_flagged_at, last_evaluated_at)
       SELECT v.id, $1, v.source_id, v.document_id, v.subject, v.title, v.url, v.owner, v.last_modified::timestamptz,
              v.max_age, v.age, v.details::jsonb, 'open', $2::timestamptz, $2::timestamptz
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                   $11::int[], $12::int[], $13::text[])
            AS v(id, source_id, document_id, subject, title, url, owner, last_modified, max_age, age, details)
       ON CONFLICT (kind, subject) WHERE status <> 'resolved' DO NOTHING
       RETURNING *`,
      [kind, iso(now), facts.map(() => randomUUID()), ...factColumns(facts)],
    );
    return rows.map(mapAlert);
  }

  async refresh(updates: { id: string; facts: AlertFacts }[], now: Date): Promise<void> {
    if (updates.length === 0) return;
    const cols = factColumns(updates.map((u) => u.facts));
    await this.db.query(
      `UPDATE alerts a SET title = v.title, url = v.url, owner = v.owner, last_modified = v.last_modified::timestamptz,
              expected_max_age_days = v.max_age, age_days = v.age, details = v.details::jsonb, last_evaluated_at = $1::timestamptz
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int[], $9::text[])
            AS v(id, title, url, owner, last_modified, max_age, age, details)
       WHERE a.id = v.id AND a.status <> 'resolved'`,
      [iso(now), updates.map((u) => u.id), cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9]],
    );
  }

  async resolve(items: { id: string; reason: string }[], now: Date): Promise<Alert[]> {
    if (items.length === 0) return [];
    const rows = await this.db.query(
      `UPDATE alerts a SET status = 'resolved', resolved_at = $1::timestamptz, resolution = v.reason,
              snoozed_until = NULL, last_evaluated_at = $1::timestamptz,
              age_days = CASE WHEN a.last_modified IS NULL THEN a.age_days
                              ELSE greatest(0, floor(extract(epoch FROM $1::timestamptz - a.last_modified) / 86400))::int END
       FROM unnest($2::text[], $3::text[]) AS v(id, reason)
       WHERE a.id = v.id AND a.status <> 'resolved'
       RETURNING a.*`,
      [iso(now), items.map((i) => i.id), items.map((i) => i.reason)],
    );
    return rows.map(mapAlert);
  }

  async reopenSnoozed(now: Date, ids?: string[]): Promise<Alert[]> {
    if (ids && ids.length === 0) return [];
    const rows = await this.db.query(
      `UPDATE alerts SET status = 'open', snoozed_until = NULL
       WHERE status = 'acknowledged' AND snoozed_until IS NOT NULL AND snoozed_until <= $1::timestamptz
         ${ids ? 'AND id = ANY($2::text[])' : ''}
       RETURNING *`,
      ids ? [iso(now), ids] : [iso(now)],
    );
    return rows.map(mapAlert);
  }

  async acknowledge(input: { id: string; actor: string; note: string; snoozedUntil: Date | null; now: Date },
  ): Promise<Alert | null> {
    const rows = await this.db.query(
      `UPDATE alerts SET status = 'acknowledged', acknowledged_at = $2::timestamptz, acknowledged_by = $3,
              ack_note = $4, snoozed_until = $5::timestamptz
       WHERE id = $1 AND status <> 'resolved' RETURNING *`,
      [input.id, iso(input.now), input.actor, input.note, iso(input.snoozedUntil)],
    );
    return rows[0] ? mapAlert(rows[0]) : null;
  }

  async orphanedDocumentAlerts(sourceId: string, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT a.id FROM alerts a
       WHERE a.source_id = $1 AND a.kind = 'document' AND a.status <> 'resolved'
         AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = a.document_id AND d.status <> 'deleted')
       ORDER BY a.id LIMIT $2`,
      [sourceId, limit],
    );
    return rows.map((r) => String(r.id));
  }

  async liveIds(sourceId: string, kind: AlertKind, afterId: string | null, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM alerts WHERE source_id = $1 AND kind = $2 AND status <> 'resolved' AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
      [sourceId, kind, afterId, limit],
    );
    return rows.map((r) => String(r.id));
  }

  async recordEvents(events: NewEvent[], notifySources: ReadonlySet<string>): Promise<AlertEvent[]> {
    if (events.length === 0) return [];
    const ids = events.map(() => randomUUID());
    const rows = await this.db.query(
      `INSERT INTO alert_events (id, alert_id, source_id, type, at, actor, note, details)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::jsonb[])
       RETURNING *`,
      [
        ids,
        events.map((e) => e.alert.id),
        events.map((e) => e.alert.sourceId),
        events.map((e) => e.type),
        events.map((e) => e.at.toISOString()),
        events.map((e) => e.actor ?? null),
        events.map((e) => e.note ?? null),
        events.map((e) => (e.details ? JSON.stringify(e.details) : null)),
      ],
    );
    const toNotify = events.map((e, i) => ({ e, id: ids[i]! })).filter(({ e }) => notifySources.has(e.alert.sourceId));
    if (toNotify.length > 0) {
      await this.db.query(
        `INSERT INTO alert_outbox (event_id, source_id, next_attempt_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`,
        [toNotify.map((n) => n.id), toNotify.map((n) => n.e.alert.sourceId), toNotify.map((n) => n.e.at.toISOString())],
      );
    }
    return rows.map(mapEvent);
  }

  async get(id: string): Promise<Alert | null> {
    const rows = await this.db.query('SELECT * FROM alerts WHERE id = $1', [id]);
    return rows[0] ? mapAlert(rows[0]) : null;
  }

  async history(alertId: string): Promise<AlertEvent[]> {
    const rows = await this.db.query('SELECT * FROM alert_events WHERE alert_id = $1 ORDER BY seq', [alertId]);
    return rows.map(mapEvent);
  }

  async list(q: AlertQuery): Promise<Alert[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, v: unknown) => {
      params.push(v);
      where.push(sql(`$${params.length}`));
    };
    if (q.status) add((p) => `status = ${p}`, q.status);
    if (q.sourceId) add((p) => `source_id = ${p}`, q.sourceId);
    if (q.kind) add((p) => `kind = ${p}`, q.kind);
    if (q.after) {
      params.push(iso(q.after.firstFlaggedAt), q.after.id);
      where.push(`(first_flagged_at, id) > ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(q.limit);
    const rows = await this.db.query(
      `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY first_flagged_at, id LIMIT $${params.length}`,
      params,
    );
    return rows.map(mapAlert);
  }

  async countsBySource(): Promise<AlertCount[]> {
    const rows = await this.db.query<{ source_id: string; kind: string; status: string; n: number }>(
      'SELECT source_id, kind, status, count(*)::int AS n FROM alerts GROUP BY source_id, kind, status');
    return rows.map((r) => ({ sourceId: String(r.source_id), kind: r.kind as AlertKind, status: r.status as AlertStatus, n: Number(r.n) }));
  }

  async oldestLiveDocuments(limit: number, sourceId?: string): Promise<Alert[]> {
    const rows = await this.db.query(
      `SELECT * FROM alerts WHERE kind = 'document' AND status <> 'resolved' AND ($1::text IS NULL OR source_id = $1)
       ORDER BY last_modified, id LIMIT $2`,
      [sourceId ?? null, limit],
    );
    return rows.map(mapAlert);
  }

  // ---- Outbox ------------------------------------------------------------------------------------

  async claimOutbox(now: Date, leaseUntil: Date, limit: number): Promise<OutboxItem[]> {
    return this.db.transaction(async (tx) => {
      const claimed = await tx.query<{ event_id: string; source_id: string; attempts: number }>(
        `UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $2::timestamptz
         WHERE event_id IN (
           SELECT event_id FROM alert_outbox
           WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1::timestamptz
           ORDER BY next_attempt_at, event_id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING event_id, source_id, attempts`,
        [iso(now), iso(leaseUntil), limit],
      );
      if (claimed.length === 0) return [];
      const rows = await tx.query(
        `SELECT e.seq AS e_seq, e.id AS e_id, e.alert_id AS e_alert_id, e.source_id AS e_source_id, e.type AS e_type, e.at AS e_at,
                e.actor AS e_actor, e.note AS e_note, e.details AS e_details, a.*
         FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE e.id = ANY($1::text[])`,
        [claimed.map((c) => c.event_id)],
      );
      const byId = new Map(rows.map((r) => [String(r.e_id), r]));
      const out: OutboxItem[] = [];
      for (const c of claimed) {
        const r = byId.get(String(c.event_id));
        if (!r) continue;
        const event = mapEvent({ id: r.e_id, alert_id: r.e_alert_id, source_id: r.e_source_id, type: r.e_type, at: r.e_at, actor: r.e_actor, note: r.e_note, details: r.e_details });
        out.push({ eventId: String(c.event_id), sourceId: String(c.source_id), attempts: Number(c.attempts), event, alert: mapAlert(r), seq: Number(r.e_seq) });
      }
      return out.sort((a, b) => a.seq - b.seq);
    });
  }

  async markDelivered(eventIds: string[], now: Date): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.query(
      `UPDATE alert_outbox SET delivered_at = $2::timestamptz, last_error = NULL WHERE event_id = ANY($1::text[])`,
      [eventIds, iso(now)]);
  }

  async markFailed(eventIds: string[], error: string, retryAt: Date | null, now: Date): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.query(
      retryAt
        ? `UPDATE alert_outbox SET last_error = $2, next_attempt_at = $3::timestamptz WHERE event_id = ANY($1::text[])`
        : `UPDATE alert_outbox SET last_error = $2, gave_up_at = $3::timestamptz WHERE event_id = ANY($1::text[])`,
      [eventIds, error.slice(0, 1000), iso(retryAt ?? now)],
    );
  }

  async outboxState(eventId: string): Promise<OutboxState | null> {
    const rows = await this.db.query('SELECT * FROM alert_outbox WHERE event_id = $1', [eventId]);
    const r = rows[0];
    if (!r) return null;
    return {
      attempts: Number(r.attempts),
      nextAttemptAt: toDate(r.next_attempt_at),
      deliveredAt: toDateOrNull(r.delivered_at),
      gaveUpAt: toDateOrNull(r.gave_up_at),
      lastError: str(r.last_error),
    };
  }
}

import type { NotificationCounts, NotificationStore, NotificationSubscription } from './interface.ts';
import { Assignments, SqlAggregate, iso, str, toDate, toDateOrNull, toJson, type Row } from './sql.ts';

function mapSubscription(r: Row): NotificationSubscription {
  return {
    id: String(r.id),
    sourceId: String(r.source_id),
    kind: String(r.kind),
    resource: String(r.resource),
    externalId: String(r.external_id),
    secretHash: String(r.secret_hash),
    address: String(r.address),
    expiresAt: toDateOrNull(r.expires_at),
    status: r.status as NotificationSubscription['status'],
    data: toJson<Record<string, unknown>>(r.data) ?? {},
    lastError: str(r.last_error),
    createdAt: toDate(r.created_at),
    renewedAt: toDateOrNull(r.renewed_at),
  };
}

/** Subscriptions, pending sync requests and notification counters (issue 14). */
export class SqlNotificationStore extends SqlAggregate implements NotificationStore {
  async subscriptions(sourceId?: string): Promise<NotificationSubscription[]> {
    const rows = sourceId
      ? await this.db.query('SELECT * FROM notification_subscriptions WHERE source_id = $1 ORDER BY created_at, id', [sourceId])
      : await this.db.query('SELECT * FROM notification_subscriptions ORDER BY created_at, id', []);
    return rows.map(mapSubscription);
  }

  async subscriptionByExternalId(kind: string, externalId: string): Promise<NotificationSubscription | null> {
    const rows = await this.db.query('SELECT * FROM notification_subscriptions WHERE kind = $1 AND external_id = $2', [kind, externalId]);
    return rows[0] ? mapSubscription(rows[0]) : null;
  }

  async saveSubscription(sub: Omit<NotificationSubscription, 'createdAt' | 'renewedAt'> & { renewedAt?: Date | null }): Promise<NotificationSubscription> {
    const rows = await this.db.query(
      `INSERT INTO notification_subscriptions (id, source_id, kind, resource, external_id, secret_hash, address, expires_at, status, data, last_error, renewed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *`,
      [sub.id, sub.sourceId, sub.kind, sub.resource, sub.externalId, sub.secretHash, sub.address, iso(sub.expiresAt), sub.status,
        JSON.stringify(sub.data ?? {}), sub.lastError, iso(sub.renewedAt ?? null)],
    );
    return mapSubscription(rows[0]!);
  }

  async updateSubscription(id: string, patch: Partial<Pick<NotificationSubscription, 'expiresAt' | 'status' | 'lastError' | 'renewedAt' | 'data'>>): Promise<void> {
    const a = new Assignments(id)
      .set('expires_at', patch.expiresAt === undefined ? undefined : iso(patch.expiresAt))
      .set('status', patch.status)
      .set('last_error', patch.lastError)
      .set('renewed_at', patch.renewedAt === undefined ? undefined : iso(patch.renewedAt))
      .set('data', patch.data === undefined ? undefined : JSON.stringify(patch.data));
    if (a.empty) return;
    await this.db.query(`UPDATE notification_subscriptions SET ${a} WHERE id = $1`, a.params);
  }

  async deleteSubscription(id: string): Promise<void> {
    await this.db.query('DELETE FROM notification_subscriptions WHERE id = $1', [id]);
  }

  async requestSync(sourceId: string, notifiedAt: Date): Promise<void> {
    // A request for a source deleted meanwhile inserts nothing (the foreign key would refuse it).
    await this.db.query(
      `INSERT INTO sync_requests (source_id, notified_at)
       SELECT id, $2::timestamptz FROM sources WHERE id = $1
       ON CONFLICT (source_id) DO UPDATE SET notified_at = LEAST(sync_requests.notified_at, EXCLUDED.notified_at)`,
      [sourceId, iso(notifiedAt)],
    );
  }

  async takeSyncRequest(sourceId: string): Promise<{ notifiedAt: Date } | null> {
    const rows = await this.db.query('DELETE FROM sync_requests WHERE source_id = $1 RETURNING notified_at', [sourceId]);
    return rows[0] ? { notifiedAt: toDate(rows[0].notified_at) } : null;
  }

  async pendingSyncRequests(): Promise<string[]> {
    const rows = await this.db.query<{ source_id: string }>('SELECT source_id FROM sync_requests ORDER BY requested_at', []);
    return rows.map((r) => String(r.source_id));
  }

  async markRunNotified(runId: string, notifiedAt: Date): Promise<void> {
    await this.db.query(
      'UPDATE runs SET notified_at = LEAST(COALESCE(notified_at, $2::timestamptz), $2::timestamptz) WHERE id = $1',
      [runId, iso(notifiedAt)],
    );
  }

  async addCounts(sourceId: string, delta: { accepted: number; rejected: number; at: Date }): Promise<void> {
    if (!delta.accepted && !delta.rejected) return;
    await this.db.query(
      `INSERT INTO notification_counts (source_id, accepted, rejected, last_accepted_at, last_rejected_at)
       SELECT id, $2::bigint, $3::bigint, CASE WHEN $2::bigint > 0 THEN $4::timestamptz END, CASE WHEN $3::bigint > 0 THEN $4::timestamptz END
       FROM sources WHERE id = $1
       ON CONFLICT (source_id) DO UPDATE SET
         accepted = notification_counts.accepted + EXCLUDED.accepted,
         rejected = notification_counts.rejected + EXCLUDED.rejected,
         last_accepted_at = COALESCE(EXCLUDED.last_accepted_at, notification_counts.last_accepted_at),
         last_rejected_at = COALESCE(EXCLUDED.last_rejected_at, notification_counts.last_rejected_at)`,
      [sourceId, delta.accepted, delta.rejected, iso(delta.at)],
    );
  }

  async counts(sourceId: string): Promise<NotificationCounts> {
    const rows = await this.db.query('SELECT * FROM notification_counts WHERE source_id = $1', [sourceId]);
    const r = rows[0];
    return {
      accepted: r ? Number(r.accepted) : 0,
      rejected: r ? Number(r.rejected) : 0,
      lastAcceptedAt: r ? toDateOrNull(r.last_accepted_at) : null,
      lastRejectedAt: r ? toDateOrNull(r.last_rejected_at) : null,
    };
  }
}

import { randomUUID } from 'node:crypto';
import { auditHash, checkLink, type ChainLink } from './audit-chain.ts';
import type { AuditDocument, AuditEntry, AuditOutcome, AuditQuery, AuditRecord, AuditStore, AuditVerification, SqlDriver } from './interface.ts';
import { Conditions, SqlAggregate, iso, str, strings, toDate, toJson, type Row } from './sql.ts';

function mapAudit(r: Row): AuditRecord {
  const actor = str(r.actor);
  return {
    seq: Number(r.seq),
    id: String(r.id),
    at: toDate(r.at),
    user: actor,
    actor,
    agent: str(r.agent),
    action: String(r.action),
    target: str(r.target),
    outcome: String(r.outcome) as AuditOutcome,
    query: str(r.query),
    documentIds: strings(r.document_ids),
    documents: toJson<AuditDocument[]>(r.documents) ?? [],
    sourceIds: strings(r.source_ids),
    details: r.details == null ? null : toJson<Record<string, unknown>>(r.details),
    requestId: str(r.request_id),
    prevId: str(r.prev_id),
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
  };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * jsonb and text refuse NUL, and a lone surrogate would be stored as U+FFFD while the hash was
 * taken over the original; an audit record must still be written, and verify exactly as stored.
 */
function clean<T>(v: T): T {
  if (typeof v === 'string') return v.split('\u0000').join('\uFFFD').replace(LONE_SURROGATE, '\uFFFD') as T;
  if (Array.isArray(v)) return v.map(clean) as T;
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [clean(k), clean(x)])) as T;
  }
  return v;
}

const PAGE = 1000;

/**
 * The audit trail: append-only and hash-chained. Each record carries the previous record's id and
 * hash; `audit_chain` holds the head (so appends from any number of processes queue on its row
 * lock and keep one chain) and the anchor left by retention pruning (so the oldest retained
 * record still checks against something).
 */
export class SqlAuditStore extends SqlAggregate implements AuditStore {
  async append(entry: AuditEntry): Promise<AuditRecord> {
    const e = clean(entry);
    return this.db.transaction(async (tx) => {
      const head = await lockedChain(tx);
      const draft: Omit<AuditRecord, 'hash'> = {
        seq: head.head.seq + 1,
        id: randomUUID(),
        // Millisecond precision: exactly what timestamptz gives back, so the hash survives the round trip.
        at: new Date((e.at ?? new Date()).getTime()),
        user: e.user,
        actor: e.user,
        agent: e.agent,
        action: e.action,
        target: e.target ?? null,
        outcome: e.outcome ?? 'ok',
        query: e.query,
        documentIds: [...e.documentIds],
        documents: (e.documents ?? []).map((d) => ({ id: d.id, title: d.title ?? null, url: d.url ?? null, sourceId: d.sourceId ?? null })),
        sourceIds: [...(e.sourceIds ?? [])],
        details: e.details ?? null,
        requestId: e.requestId,
        prevId: head.head.id,
        prevHash: head.head.hash,
      };
      const rec: AuditRecord = { ...draft, hash: auditHash(draft) };
      await tx.query(
        `INSERT INTO audit_log (seq, id, at, actor, agent, action, target, outcome, query, document_ids, documents,
                                source_ids, details, request_id, prev_id, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [rec.seq, rec.id, iso(rec.at), rec.actor, rec.agent, rec.action, rec.target, rec.outcome, rec.query, rec.documentIds,
          JSON.stringify(rec.documents), rec.sourceIds, rec.details === null ? null : JSON.stringify(rec.details), rec.requestId,
          rec.prevId, rec.prevHash, rec.hash],
      );
      await tx.query('UPDATE audit_chain SET head_seq = $1, head_id = $2, head_hash = $3 WHERE id = 1', [rec.seq, rec.id, rec.hash]);
      return rec;
    });
  }

  async search(q: AuditQuery): Promise<AuditRecord[]> {
    const c = new Conditions()
      .add((p) => `lower(actor) = lower(${p})`, q.user || undefined)
      .add((p) => `agent = ${p}`, q.agent || undefined)
      .add((p) => `action = ${p}`, q.action || undefined)
      .add((p) => `outcome = ${p}`, q.outcome || undefined)
      .add((p) => `(document_ids @> ARRAY[${p}]::text[] OR target = ${p})`, q.documentId || undefined)
      .add((p) => `(source_ids @> ARRAY[${p}]::text[] OR target = ${p})`, q.sourceId || undefined)
      .add((p) => `at >= ${p}::timestamptz`, q.from ? iso(q.from) : undefined)
      .add((p) => `at <= ${p}::timestamptz`, q.to ? iso(q.to) : undefined)
      .add((p) => `seq < ${p}`, q.beforeSeq);
    const limit = c.param(Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100))));
    const rows = await this.db.query(`SELECT * FROM audit_log ${c.where()} ORDER BY seq DESC LIMIT ${limit}`, c.params);
    return rows.map(mapAudit);
  }

  /** One snapshot throughout, so records appended or pruned while it runs cannot look like tampering. */
  verify(): Promise<AuditVerification> {
    return this.db.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', []);
      return this.walk(tx);
    });
  }

  private async walk(db: SqlDriver): Promise<AuditVerification> {
    const chain = await readChain(db);
    let prev: ChainLink = chain.anchor;
    let records = 0;
    for (;;) {
      const rows = await db.query(`SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`, [prev.seq]);
      for (const row of rows) {
        const r = mapAudit(row);
        const broken = checkLink(prev, r);
        if (broken) return { ok: false, records, firstBrokenId: broken.brokenId ?? undefined, firstBrokenSeq: broken.brokenSeq, reason: broken.reason };
        records++;
        prev = { seq: r.seq, id: r.id, hash: r.hash };
      }
      if (rows.length < PAGE) break;
    }
    // The head remembers the newest record: removing it (or the whole tail) is caught here.
    if (prev.seq !== chain.head.seq || prev.hash !== chain.head.hash) {
      const missing = prev.seq < chain.head.seq;
      return {
        ok: false, records,
        // Only the head's own id is still known when the newest record is the one that vanished.
        firstBrokenId: (missing ? (chain.head.seq === prev.seq + 1 ? chain.head.id : null) : prev.id) ?? undefined,
        firstBrokenSeq: missing ? prev.seq + 1 : prev.seq,
        reason: missing ? 'records at the head of the chain are missing' : 'the newest record does not match the chain head',
      };
    }
    return { ok: true, records };
  }

  async prune(before: Date): Promise<number> {
    return this.db.transaction(async (tx) => {
      await lockedChain(tx);
      const rows = await tx.query<{ seq: number | string; id: string; hash: string }>(
        'SELECT seq, id, hash FROM audit_log WHERE at < $1::timestamptz ORDER BY seq DESC LIMIT 1', [iso(before)]);
      const last = rows[0];
      if (!last) return 0;
      const deleted = await tx.query('DELETE FROM audit_log WHERE seq <= $1 RETURNING seq', [last.seq]);
      await tx.query('UPDATE audit_chain SET anchor_seq = $1, anchor_id = $2, anchor_hash = $3 WHERE id = 1', [last.seq, last.id, last.hash]);
      return deleted.length;
    });
  }
}

interface Chain { head: ChainLink; anchor: ChainLink }

function toChain(r: Row): Chain {
  return {
    head: { seq: Number(r.head_seq), id: str(r.head_id), hash: String(r.head_hash) },
    anchor: { seq: Number(r.anchor_seq), id: str(r.anchor_id), hash: String(r.anchor_hash) },
  };
}

/** The chain row, locked until the transaction ends: the one place writers queue. */
async function lockedChain(tx: SqlDriver): Promise<Chain> {
  const rows = await tx.query('SELECT * FROM audit_chain WHERE id = 1 FOR UPDATE', []);
  if (!rows[0]) throw new Error('audit chain is not initialised (migrations not applied)');
  return toChain(rows[0]);
}

async function readChain(db: SqlDriver): Promise<Chain> {
  const rows = await db.query('SELECT * FROM audit_chain WHERE id = 1', []);
  if (!rows[0]) throw new Error('audit chain is not initialised (migrations not applied)');
  return toChain(rows[0]);
}

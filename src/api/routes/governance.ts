import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { notFound } from '../../errors.ts';
import { csvRow } from '../../freshness/csv.ts';
import type { AuditQuery, AuditRecord } from '../../metadata/interface.ts';
import { fetchDocument } from '../../retrieval/documents.ts';
import { documentAccess, explainDocumentAccess } from '../../retrieval/explain.ts';
import { resolveAgent } from '../assistant.ts';
import { actorOf } from '../audit-trail.ts';
import { jsonBody, type AppEnv } from '../env.ts';

/** A moment: a full ISO date-time, or a calendar day (`from` → its start, `to` → its end, UTC). */
const moment = (end: boolean) => z.union([
  z.iso.datetime({ offset: true }).transform((s) => new Date(s)),
  z.iso.date().transform((s) => new Date(`${s}T${end ? '23:59:59.999' : '00:00:00.000'}Z`)),
]);

export const auditQuerySchema = z.object({
  user: z.string().trim().max(320).optional(),
  agent: z.string().trim().max(200).optional(),
  action: z.string().trim().max(200).optional(),
  documentId: z.string().trim().max(200).optional(),
  sourceId: z.string().trim().max(200).optional(),
  outcome: z.enum(['ok', 'denied', 'error']).optional(),
  from: moment(false).optional(),
  to: moment(true).optional(),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  format: z.enum(['json', 'csv']).optional(),
});

export const explainQuerySchema = z.object({
  user: z.string().trim().min(1).max(320),
  documentId: z.string().trim().min(1).max(200),
  groups: z.string().max(10_000).optional(),
  agentId: z.string().trim().max(200).optional(),
});

export const quarantineSchema = z.object({ reason: z.string().trim().min(1, 'a reason is required').max(2000) }).strict();

export const AUDIT_CSV_COLUMNS = [
  'seq', 'at', 'actor', 'agent', 'action', 'target', 'outcome', 'query', 'documentIds', 'documentTitles', 'documentUrls',
  'sourceIds', 'requestId', 'details', 'hash',
] as const;

function auditCsvRow(r: AuditRecord): string {
  return csvRow([
    r.seq, r.at.toISOString(), r.actor, r.agent, r.action, r.target, r.outcome, r.query, r.documentIds.join(' '),
    r.documents.map((d) => d.title ?? '').join(' | '), r.documents.map((d) => d.url ?? '').join(' '), r.sourceIds.join(' '),
    r.requestId, r.details ? JSON.stringify(r.details) : null, r.hash,
  ]);
}

export const publicAuditRecord = (r: AuditRecord) => ({ ...r, at: r.at.toISOString() });

/** CSV when asked by `format=csv` (a plain download link) or by an Accept header preferring it. */
function wantsCsv(c: Context, format: string | undefined): boolean {
  if (format) return format === 'csv';
  const accept = (c.req.header('accept') ?? '').toLowerCase();
  const csv = accept.indexOf('text/csv');
  const json = accept.indexOf('application/json');
  return csv >= 0 && (json < 0 || csv < json);
}

/** The audit trail, access explanations and document quarantine (compliance reviewers and admins). */
export function governanceRoutes() {
  const r = new Hono<AppEnv>();

  r.get('/audit', async (c) => {
    const ctx = c.get('ctx');
    const q = auditQuerySchema.parse(c.req.query());
    const filter: AuditQuery = {
      user: q.user || undefined, agent: q.agent || undefined, action: q.action || undefined, documentId: q.documentId || undefined,
      sourceId: q.sourceId || undefined, outcome: q.outcome, from: q.from, to: q.to, beforeSeq: q.before,
    };
    if (wantsCsv(c, q.format)) {
      // Streamed page by page, newest first: a year of records never sits in memory whole.
      let before = q.before;
      let done = false;
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(controller) { controller.enqueue(encoder.encode(csvRow([...AUDIT_CSV_COLUMNS]))); },
        async pull(controller) {
          if (done) { controller.close(); return; }
          const page = await ctx.metadata.audit.search({ ...filter, beforeSeq: before, limit: 1000 });
          if (page.length < 1000) done = true;
          before = page.at(-1)?.seq;
          controller.enqueue(encoder.encode(page.map(auditCsvRow).join('')));
        },
      });
      return c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="audit.csv"' });
    }
    const limit = q.limit ?? 100;
    const records = await ctx.metadata.audit.search({ ...filter, limit });
    return c.json({ records: records.map(publicAuditRecord), nextBefore: records.length === limit ? records.at(-1)!.seq : null });
  });

  r.get('/audit/verify', async (c) => c.json(await c.get('ctx').metadata.audit.verify()));

  r.get('/access/explain', async (c) => {
    const q = explainQuerySchema.parse(c.req.query());
    const groups = q.groups ? q.groups.split(',').map((g) => g.trim()).filter(Boolean) : [];
    const out = await explainDocumentAccess({ ctx: c.get('ctx'), input: { user: q.user, documentId: q.documentId, groups, agentId: q.agentId || undefined } });
    c.set('audit', { target: q.documentId, details: { user: out.user, groups, allowed: out.allowed, ...(out.denial ? { denial: out.denial } : {}) } });
    return c.json(out);
  });

  // Assistants (the user role): a readable document's metadata and chunks; 404 otherwise.
  r.get('/documents/:id', async (c) => {
    const ctx = c.get('ctx');
    const id = c.req.param('id');
    const agent = await resolveAgent(ctx, c.req.header('x-agent-key'), { action: 'document.fetch', target: id });
    return c.json(await fetchDocument({ ctx, input: { documentId: id, agent } }));
  });

  r.get('/documents/:id/access', async (c) => {
    const id = c.req.param('id');
    c.set('audit', { target: id });
    const out = await documentAccess({ ctx: c.get('ctx'), input: { documentId: id } });
    if (!out) throw notFound('Document');
    return c.json(out);
  });

  r.post('/documents/:id/quarantine', async (c) => {
    const ctx = c.get('ctx');
    const id = c.req.param('id');
    const { reason } = quarantineSchema.parse(await jsonBody(c));
    c.set('audit', { target: id, details: { reason } });
    const [doc] = await ctx.metadata.documents.byIds([id]);
    if (!doc || doc.status === 'deleted') throw notFound('Document');
    const q = await ctx.metadata.switches.quarantine(doc, reason, actorOf(ctx.caller));
    return c.json({ documentId: doc.id, quarantined: true, reason: q.reason, by: q.actor, at: q.at.toISOString() }, 201);
  });

  r.delete('/documents/:id/quarantine', async (c) => {
    const id = c.req.param('id');
    c.set('audit', { target: id });
    if (!(await c.get('ctx').metadata.switches.release(id))) throw notFound('Quarantine');
    return c.body(null, 204);
  });

  r.get('/quarantine', async (c) => {
    const list = await c.get('ctx').metadata.switches.quarantined();
    return c.json({ documents: list.map((q) => ({ ...q, at: q.at.toISOString() })) });
  });
  return r;
}

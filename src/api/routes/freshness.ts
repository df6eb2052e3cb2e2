import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { notFound } from '../../errors.ts';
import { alertCsvRow, csvHeader } from '../../freshness/csv.ts';
import { acknowledge, alertWithHistory, allAlerts, freshnessSummary, listAlertPage, publicAlert } from '../../freshness/service.ts';
import { jsonBody, type AppEnv } from '../env.ts';

export const alertListQuerySchema = z.object({
  status: z.enum(['open', 'acknowledged', 'resolved']).optional(),
  sourceId: z.string().min(1).max(200).optional(),
  kind: z.enum(['document', 'index_lag', 'sync_failing']).optional(),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
  cursor: z.string().max(500).optional(),
});
export const ackSchema = z.object({
  note: z.string().trim().min(1, 'a note is required').max(2000),
  snoozeDays: z.number().int().min(1).max(365).optional(),
}).strict();
const uuid = z.uuid();

/** CSV when the client asks for it ahead of (or without) JSON. */
function wantsCsv(c: Context): boolean {
  const accept = (c.req.header('accept') ?? '').toLowerCase();
  const csv = accept.indexOf('text/csv');
  if (csv < 0) return false;
  const json = accept.indexOf('application/json');
  return json < 0 || csv < json;
}

/** Compliance reviewers' view of freshness alerts (admins too). */
export function freshnessRoutes() {
  const r = new Hono<AppEnv>();

  r.get('/freshness/alerts', async (c) => {
    const ctx = c.get('ctx');
    const q = alertListQuerySchema.parse(c.req.query());
    const filter = { status: q.status, sourceId: q.sourceId, kind: q.kind };
    if (wantsCsv(c)) {
      // Streamed a page at a time: an export of a large backlog never sits in memory whole.
      const now = ctx.now();
      const pages = allAlerts(ctx, filter);
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(controller) { controller.enqueue(encoder.encode(csvHeader())); },
        async pull(controller) {
          const next = await pages.next();
          if (next.done) { controller.close(); return; }
          controller.enqueue(encoder.encode(next.value.map((a) => alertCsvRow(publicAlert(a, now))).join('')));
        },
        async cancel() { await pages.return(undefined); },
      });
      return c.body(body, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="freshness-alerts.csv"',
      });
    }
    const { alerts, nextCursor } = await listAlertPage({ ctx, input: { ...filter, limit: q.limit ?? 1000, cursor: q.cursor } });
    const now = ctx.now();
    return c.json({ alerts: alerts.map((a) => publicAlert(a, now)), nextCursor });
  });

  r.get('/freshness/summary', async (c) => c.json(await freshnessSummary({ ctx: c.get('ctx') })));

  r.get('/freshness/alerts/:id', async (c) => {
    const id = c.req.param('id');
    if (!uuid.safeParse(id).success) throw notFound('Alert');
    return c.json(await alertWithHistory({ ctx: c.get('ctx'), id }));
  });

  r.post('/freshness/alerts/:id/ack', async (c) => {
    const id = c.req.param('id');
    if (!uuid.safeParse(id).success) throw notFound('Alert');
    const input = ackSchema.parse(await jsonBody(c));
    return c.json(await acknowledge({ ctx: c.get('ctx'), input: { id, ...input } }));
  });
  return r;
}

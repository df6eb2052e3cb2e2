import client from 'prom-client';

/** One registry per process; /metrics renders it. */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export interface SubscriptionExpiry {
  sourceId: string;
  kind: string;
  resource: string;
  expiresAt: Date | null;
}

/** Read at scrape time (set by the process that knows where subscriptions are stored). */
export const scrapeSources: { subscriptions: (() => Promise<SubscriptionExpiry[]>) | null } = { subscriptions: null };

export const metrics = {
  httpDuration: new client.Histogram({
    name: 'clearance_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  }),
  searchResults: new client.Histogram({
    name: 'clearance_search_results',
    help: 'Results returned per search',
    buckets: [0, 1, 3, 5, 10, 20, 50, 100],
    registers: [registry],
  }),
  syncRuns: new client.Counter({
    name: 'clearance_sync_runs_total',
    help: 'Finished sync runs',
    labelNames: ['status'],
    registers: [registry],
  }),
  notifications: new client.Counter({
    name: 'clearance_notifications_total',
    help: 'Change notifications received, by source and outcome (accepted, rejected)',
    labelNames: ['source_id', 'source_type', 'outcome'],
    registers: [registry],
  }),
  notificationToStart: new client.Histogram({
    name: 'clearance_notification_to_sync_start_seconds',
    help: 'Time from the first change notification a sync answers to the sync starting',
    labelNames: ['source_id'],
    buckets: [0.5, 1, 2, 3, 5, 10, 30, 60, 300],
    registers: [registry],
  }),
  notificationToEnd: new client.Histogram({
    name: 'clearance_notification_to_sync_end_seconds',
    help: 'Time from the first change notification a sync answers to the sync succeeding',
    labelNames: ['source_id'],
    buckets: [0.5, 1, 2, 3, 5, 10, 30, 60, 300],
    registers: [registry],
  }),
  subscriptionExpiry: new client.Gauge({
    name: 'clearance_notification_subscription_expiry_timestamp_seconds',
    help: 'When each change-notification subscription or channel expires unless renewed (Unix time)',
    labelNames: ['source_id', 'kind', 'resource'],
    registers: [registry],
    async collect() {
      this.reset();
      const list = await scrapeSources.subscriptions?.().catch(() => []) ?? [];
      for (const s of list) {
        if (s.expiresAt) this.set({ source_id: s.sourceId, kind: s.kind, resource: s.resource }, s.expiresAt.getTime() / 1000);
      }
    },
  }),
  chunksEmbedded: new client.Counter({
    name: 'clearance_chunks_embedded_total',
    help: 'Chunks sent to the embedder',
    registers: [registry],
  }),
};

/**
 * The freshness module's store port: alerts, their event history and the notification outbox.
 * Times come from the caller (the injectable clock), never from the database. The SQL adapter is
 * src/metadata/alerts.ts; the domain logic (what to open, resolve, notify) stays in this folder.
 */

export type AlertKind = 'document' | 'index_lag' | 'sync_failing';
export type AlertStatus = 'open' | 'acknowledged' | 'resolved';
export type EventType = 'opened' | 'acknowledged' | 'reopened' | 'resolved';

/** What an evaluation found about one subject; written onto the alert each time it changes. */
export interface AlertFacts {
  sourceId: string;
  documentId: string | null;
  subject: string;
  title: string;
  url: string | null;
  owner: string | null;
  lastModified: Date | null;
  expectedMaxAgeDays: number | null;
  ageDays: number | null;
  details: Record<string, unknown> | null;
}

export interface Alert extends AlertFacts {
  id: string;
  kind: AlertKind;
  status: AlertStatus;
  firstFlaggedAt: Date;
  lastEvaluatedAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
  note: string | null;
  snoozedUntil: Date | null;
  resolvedAt: Date | null;
  resolution: string | null;
}

export interface AlertEvent {
  id: string;
  alertId: string;
  sourceId: string;
  type: EventType;
  at: Date;
  actor: string | null;
  note: string | null;
  details: Record<string, unknown> | null;
}

export interface NewEvent {
  alert: Pick<Alert, 'id' | 'sourceId'>;
  type: EventType;
  at: Date;
  actor?: string | null;
  note?: string | null;
  details?: Record<string, unknown> | null;
}

export interface AlertQuery {
  status?: AlertStatus;
  sourceId?: string;
  kind?: AlertKind;
  /** Keyset position: alerts strictly after this (firstFlaggedAt, id). */
  after?: { firstFlaggedAt: Date; id: string };
  limit: number;
}

export interface OutboxItem {
  eventId: string;
  sourceId: string;
  attempts: number;
  event: AlertEvent;
  alert: Alert;
  /** Order in which the events were recorded. */
  seq: number;
}

export interface OutboxState {
  attempts: number;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  gaveUpAt: Date | null;
  lastError: string | null;
}

export type AlertCount = { sourceId: string; kind: AlertKind; status: AlertStatus; n: number };

/** The writes an evaluation makes; inside `atomically` they commit or roll back together. */
export interface AlertWrites {
  /** Live (not resolved) alerts of one kind for the given subjects, keyed by subject. */
  live(kind: AlertKind, subjects: string[]): Promise<Map<string, Alert>>;
  /**
   * Opens alerts for subjects that have no live one. A concurrent evaluation that got there first
   * wins; only alerts actually opened come back.
   */
  open(kind: AlertKind, facts: AlertFacts[], now: Date): Promise<Alert[]>;
  /** Rewrites the facts of live alerts (age, title, owner… changed since the last evaluation). */
  refresh(updates: { id: string; facts: AlertFacts }[], now: Date): Promise<void>;
  /** Resolves live alerts; returns only those this call resolved (a concurrent resolve is not repeated). */
  resolve(items: { id: string; reason: string }[], now: Date): Promise<Alert[]>;
  /** Acknowledged alerts whose snooze has ended go back to open. `ids` limits it to those alerts. */
  reopenSnoozed(now: Date, ids?: string[]): Promise<Alert[]>;
  acknowledge(input: { id: string; actor: string; note: string; snoozedUntil: Date | null; now: Date }): Promise<Alert | null>;
  /**
   * Appends history rows and, for sources in `notifySources`, the matching outbox rows, so an
   * event can never exist without its pending notification (or vice versa).
   */
  recordEvents(events: NewEvent[], notifySources: ReadonlySet<string>): Promise<AlertEvent[]>;
}

export interface AlertStore extends AlertWrites {
  /** Runs `fn` in one transaction. */
  atomically<T>(fn: (tx: AlertWrites) => Promise<T>): Promise<T>;
  get(id: string): Promise<Alert | null>;
  history(alertId: string): Promise<AlertEvent[]>;
  /** Oldest-flagged first, stable under paging because first_flagged_at never changes. */
  list(q: AlertQuery): Promise<Alert[]>;
  countsBySource(): Promise<AlertCount[]>;
  /** Live document alerts whose documents changed longest ago. */
  oldestLiveDocuments(limit: number, sourceId?: string): Promise<Alert[]>;
  /** Live document alerts of a source whose document row no longer exists (hard-deleted by the indexer). */
  orphanedDocumentAlerts(sourceId: string, limit: number): Promise<string[]>;
  /** Live alert ids of one kind in a source, paged by id (used when a policy exempts everything). */
  liveIds(sourceId: string, kind: AlertKind, afterId: string | null, limit: number): Promise<string[]>;
  /**
   * Claims due outbox rows: the attempt is counted and the row hidden until `leaseUntil`, so a
   * second worker does not send the same event meanwhile and a crashed worker's rows come back later.
   */
  claimOutbox(now: Date, leaseUntil: Date, limit: number): Promise<OutboxItem[]>;
  markDelivered(eventIds: string[], now: Date): Promise<void>;
  markFailed(eventIds: string[], error: string, retryAt: Date | null, now: Date): Promise<void>;
  outboxState(eventId: string): Promise<OutboxState | null>;
}

import type { PublicAlert } from './service.ts';

/** Columns of the CSV export, in order: the contract's fields first, then review state. */
export const CSV_COLUMNS = [
  'id', 'kind', 'documentId', 'sourceId', 'title', 'url', 'owner', 'lastModified', 'expectedMaxAgeDays', 'ageDays',
  'status', 'firstFlaggedAt', 'acknowledgedBy', 'acknowledgedAt', 'note', 'snoozedUntil', 'resolvedAt', 'resolution',
] as const;

/**
 * One RFC 4180 field. Text that a spreadsheet would read as a formula (=, +, -, @, and the tab and
 * carriage return that some of them skip before looking) gets a leading apostrophe: titles, notes
 * and owners come from document sources and reviewers, not from us.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'number' ? String(value) : String(value);
  if (typeof value !== 'number' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(values: unknown[]): string {
  return values.map(csvField).join(',') + '\r\n';
}

export const csvHeader = (): string => csvRow([...CSV_COLUMNS]);

export function alertCsvRow(a: PublicAlert): string {
  return csvRow(CSV_COLUMNS.map((c) => a[c as keyof PublicAlert] ?? null));
}

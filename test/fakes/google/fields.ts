/**
 * Drive's partial responses: `fields=id,name,owners(emailAddress),capabilities/canEdit` keeps only
 * what was asked for; `*` (or no selection) keeps everything.
 */
export function selectFields(obj: Record<string, unknown>, fields: string | null | undefined): Record<string, unknown> {
  if (!fields || fields.trim() === '*') return obj;
  const out: Record<string, unknown> = {};
  for (const part of splitTop(fields)) {
    const paren = part.indexOf('(');
    const slash = part.indexOf('/');
    if (paren > 0 && (slash < 0 || paren < slash)) {
      const key = part.slice(0, paren);
      out[key] = narrow(obj[key], part.slice(paren + 1, -1));
    } else if (slash > 0) {
      const key = part.slice(0, slash);
      const sub = narrow(obj[key], part.slice(slash + 1));
      out[key] = out[key] && sub && typeof sub === 'object' && !Array.isArray(sub) ? { ...(out[key] as object), ...sub } : sub;
    } else if (part in obj) out[part] = obj[part];
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

function narrow(value: unknown, fields: string): unknown {
  if (Array.isArray(value)) return value.map((v) => (v && typeof v === 'object' ? selectFields(v as Record<string, unknown>, fields) : v));
  if (value && typeof value === 'object') return selectFields(value as Record<string, unknown>, fields);
  return value;
}

/** Splits a fields selection at top-level commas (`a,b(c,d)` → `a`, `b(c,d)`). */
export function splitTop(fields: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of fields) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * The part of CQL (Confluence Query Language) a sync client uses: clauses joined by AND, on
 * `space`, `type`, `id`, `ancestor`, `parent`, `lastmodified` and `created`, with `=`, `!=`, `in`,
 * `not in` and the date comparisons; dates as "yyyy/MM/dd HH:mm" / "yyyy-MM-dd" (site time zone
 * UTC here) or `now("-15m")`; `order by` is accepted and applied. Anything else is a 400, as
 * Confluence answers an unparseable query.
 */

export interface CqlSubject {
  id: string;
  type: string;
  spaceKey: string;
  ancestors: string[];
  parentId: string | null;
  modifiedAt: Date;
  createdAt: Date;
  title: string;
}

export class CqlError extends Error {}

type Clause = (s: CqlSubject) => boolean;

export interface CqlQuery {
  matches: Clause;
  order: { field: string; desc: boolean } | null;
}

const TOKEN = /\s*(?:("(?:[^"\\]|\\.)*")|('(?:[^'\\]|\\.)*')|(>=|<=|!=|[=<>(),~])|([A-Za-z_][\w.]*(?:\([^)]*\))?)|(-?\d+))/;

function tokenize(cql: string): string[] {
  const text = cql.trim();
  const re = new RegExp(TOKEN.source, 'y');
  const out: string[] = [];
  while (re.lastIndex < text.length) {
    const at = re.lastIndex;
    const m = re.exec(text);
    if (!m) throw new CqlError(`Could not parse cql near "${text.slice(at, at + 20)}"`);
    out.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5]!);
  }
  return out;
}

const unquote = (t: string) => (/^["']/.test(t) ? t.slice(1, -1).replace(/\\(.)/g, '$1') : t);

/** `now("-15m")`, `now("-2h")`, `now("-1d")`, `now()`. */
function parseDate(token: string, now: number): number {
  const fn = /^now\(\s*(?:"([+-]?)(\d+)([mhdw])"|'([+-]?)(\d+)([mhdw])')?\s*\)$/i.exec(token);
  if (fn) {
    const sign = (fn[1] ?? fn[4]) === '+' ? 1 : -1;
    const n = Number(fn[2] ?? fn[5] ?? 0);
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[(fn[3] ?? fn[6] ?? 'm').toLowerCase() as 'm'];
    return now + sign * n * unit;
  }
  const s = unquote(token);
  const m = /^(\d{4})[/-](\d{2})[/-](\d{2})(?:\s+(\d{2}):(\d{2}))?$/.exec(s);
  if (!m) throw new CqlError(`Invalid date "${s}"`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0));
}

export function parseCql(cql: string, now = Date.now()): CqlQuery {
  const tokens = tokenize(cql);
  let i = 0;
  const peek = () => tokens[i]?.toLowerCase();
  const next = () => {
    const t = tokens[i++];
    if (t === undefined) throw new CqlError('Unexpected end of cql');
    return t;
  };
  const clauses: Clause[] = [];
  let order: CqlQuery['order'] = null;
  while (i < tokens.length) {
    if (peek() === 'order') {
      next();
      if (peek() !== 'by') throw new CqlError('expected "by" after "order"');
      next();
      const field = next().toLowerCase();
      const dir = peek();
      if (dir === 'asc' || dir === 'desc') next();
      order = { field, desc: dir === 'desc' };
      break;
    }
    const field = next().toLowerCase();
    let op = next().toLowerCase();
    if (op === 'not') {
      if (next().toLowerCase() !== 'in') throw new CqlError('expected "in" after "not"');
      op = 'not in';
    }
    let values: string[];
    if (op === 'in' || op === 'not in') {
      if (next() !== '(') throw new CqlError('expected "("');
      values = [];
      for (;;) {
        values.push(next());
        const sep = next();
        if (sep === ')') break;
        if (sep !== ',') throw new CqlError('expected "," or ")"');
      }
    } else {
      values = [next()];
    }
    clauses.push(clause(field, op, values, now));
    if (i < tokens.length && peek() !== 'order') {
      const joiner = next().toLowerCase();
      if (joiner !== 'and') throw new CqlError(`unsupported operator "${joiner}" (the fake supports AND)`);
    }
  }
  return { matches: (s) => clauses.every((c) => c(s)), order };
}

function clause(field: string, op: string, raw: string[], now: number): Clause {
  const values = raw.map(unquote);
  const setOp = (get: (s: CqlSubject) => string | string[] | null): Clause => {
    const has = (s: CqlSubject) => {
      const v = get(s);
      const vs = Array.isArray(v) ? v : v === null ? [] : [v];
      return vs.some((x) => values.some((w) => w.toLowerCase() === x.toLowerCase()));
    };
    if (op === '=' || op === 'in') return has;
    if (op === '!=' || op === 'not in') return (s) => !has(s);
    throw new CqlError(`operator ${op} is not supported for ${field}`);
  };
  switch (field) {
    case 'space':
    case 'space.key':
      return setOp((s) => s.spaceKey);
    case 'type':
      return setOp((s) => s.type);
    case 'id':
    case 'content':
      return setOp((s) => s.id);
    case 'ancestor':
      return setOp((s) => s.ancestors);
    case 'parent':
      return setOp((s) => s.parentId);
    case 'title':
      if (op === '~') return (s) => s.title.toLowerCase().includes(values[0]!.toLowerCase());
      return setOp((s) => s.title);
    case 'lastmodified':
    case 'created': {
      const at = parseDate(raw[0]!, now);
      const get = (s: CqlSubject) => (field === 'created' ? s.createdAt : s.modifiedAt).getTime();
      // CQL dates have minute precision: compare at the minute the value names.
      const cmp: Record<string, Clause> = {
        '>=': (s) => get(s) >= at, '>': (s) => get(s) > at, '<=': (s) => get(s) <= at, '<': (s) => get(s) < at,
        '=': (s) => Math.floor(get(s) / 60_000) === Math.floor(at / 60_000),
      };
      const c = cmp[op];
      if (!c) throw new CqlError(`operator ${op} is not supported for ${field}`);
      return c;
    }
    default:
      throw new CqlError(`field "${field}" is not supported by the fake`);
  }
}

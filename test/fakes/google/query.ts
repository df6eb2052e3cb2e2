import type { FakeFile } from './model.ts';

/**
 * The part of Drive's `q` search language a sync client uses:
 *   'folderId' in parents · trashed = true|false · mimeType = '…' · mimeType != '…'
 * combined with `and`, `or`, `not` and parentheses. Anything else is refused (400), as Drive does
 * for an invalid query.
 */
export type Query =
  | { op: 'and' | 'or'; left: Query; right: Query }
  | { op: 'not'; inner: Query }
  | { op: 'inParents'; id: string }
  | { op: 'trashed'; value: boolean }
  | { op: 'mime'; value: string; negate: boolean };

export function parseQuery(text: string): Query {
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i];
  const take = (expected?: string) => {
    const t = tokens[i++];
    if (t === undefined || (expected !== undefined && t.toLowerCase() !== expected)) throw new Error(`unexpected ${t ?? 'end of query'}`);
    return t;
  };
  const str = () => {
    const t = take();
    if (!t.startsWith("'")) throw new Error(`expected a string, got ${t}`);
    return t.slice(1, -1).replace(/\\'/g, "'");
  };
  const primary = (): Query => {
    const t = peek();
    if (t === '(') {
      take('(');
      const q = or();
      take(')');
      return q;
    }
    if (t?.toLowerCase() === 'not') {
      take();
      return { op: 'not', inner: primary() };
    }
    if (t?.startsWith("'")) {
      const id = str();
      take('in');
      take('parents');
      return { op: 'inParents', id };
    }
    if (t === 'trashed') {
      take();
      take('=');
      const v = take().toLowerCase();
      if (v !== 'true' && v !== 'false') throw new Error('trashed takes true or false');
      return { op: 'trashed', value: v === 'true' };
    }
    if (t === 'mimeType') {
      take();
      const o = take();
      if (o !== '=' && o !== '!=') throw new Error(`mimeType does not support ${o}`);
      return { op: 'mime', value: str(), negate: o === '!=' };
    }
    throw new Error(`unsupported term ${t ?? 'end of query'}`);
  };
  const and = (): Query => {
    let q = primary();
    while (peek()?.toLowerCase() === 'and') {
      take();
      q = { op: 'and', left: q, right: primary() };
    }
    return q;
  };
  const or = (): Query => {
    let q = and();
    while (peek()?.toLowerCase() === 'or') {
      take();
      q = { op: 'or', left: q, right: and() };
    }
    return q;
  };
  const q = or();
  if (i !== tokens.length) throw new Error(`unexpected ${tokens[i]}`);
  return q;
}

export function matchesQuery(q: Query, f: FakeFile, isTrashed: (f: FakeFile) => boolean): boolean {
  switch (q.op) {
    case 'and': return matchesQuery(q.left, f, isTrashed) && matchesQuery(q.right, f, isTrashed);
    case 'or': return matchesQuery(q.left, f, isTrashed) || matchesQuery(q.right, f, isTrashed);
    case 'not': return !matchesQuery(q.inner, f, isTrashed);
    case 'inParents': return f.parent === q.id;
    case 'trashed': return isTrashed(f) === q.value;
    case 'mime': return (f.mimeType === q.value) !== q.negate;
  }
}

function tokenize(text: string): string[] {
  const out: string[] = [];
  const re = /\s*('(?:\\'|[^'])*'|!=|=|\(|\)|[A-Za-z]+)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(text))) {
    out.push(m[1]!);
    last = re.lastIndex;
  }
  if (text.slice(last).trim()) throw new Error(`cannot parse "${text.slice(last).trim()}"`);
  return out;
}

/* global document, window, sessionStorage, fetch, setTimeout, clearTimeout, Blob, HTMLElement */
// The console's core: the API client, a tiny element builder (elements are created, never parsed from strings, so nothing from the
// API is ever parsed as markup), human-readable times and schedules, dialogs and the hash router.
// Plain ES modules served as they are: no build step, no framework.

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
  }
}

const tokenInput = () => document.getElementById('token');
export const token = () => sessionStorage.getItem('clearance-token') || '';

export async function api(path, { method = 'GET', body, accept } = {}) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (accept) headers.accept = accept;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (accept === 'text/csv' && res.ok) return res.blob();
  const type = res.headers.get('content-type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, data && data.title, data && data.detail);
  return data;
}

/** h('a', {href}, 'text', child…): attributes starting with "on" are listeners; null children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'required' || k === 'open') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof HTMLElement || c instanceof window.Node ? c : document.createTextNode(String(c)));
  }
}

let fieldIds = 0;
/** A labelled form control: every input gets an accessible name. */
export function field(label, control, hint) {
  const id = control.id || `f${++fieldIds}`;
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

// ---- Human-readable values ------------------------------------------------------------------

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const exact = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

export function relative(iso, now = Date.now()) {
  const secs = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(secs) < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(secs) >= size || unit === 'second') return rtf.format(Math.round(secs / size), unit);
  }
  return '';
}

/** "3 days ago", with the exact time on hover and for screen readers. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: d.toISOString(), title: exact.format(d) }, relative(iso));
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function schedule(s) {
  if (!s || !s.intervalSeconds) return 'manual only';
  const n = s.intervalSeconds;
  const named = { 60: 'every minute', 3600: 'every hour', 86400: 'daily', 604800: 'weekly' };
  if (named[n]) return named[n];
  if (n % 86400 === 0) return `every ${n / 86400} days`;
  if (n % 3600 === 0) return `every ${n / 3600} hours`;
  if (n % 60 === 0) return `every ${n / 60} minutes`;
  return `every ${n} seconds`;
}

/** A document location: web URLs are links, file:// URLs are shown as the path they name. */
export function docLink(url, label) {
  if (!url) return label ? h('span', {}, label) : h('span', { class: 'muted' }, '—');
  let parsed;
  try { parsed = new URL(url); } catch { return h('span', { class: 'path' }, url); }
  if (parsed.protocol === 'file:') {
    const path = decodeURIComponent(parsed.pathname);
    return label ? h('span', {}, label, h('br'), h('span', { class: 'path' }, path)) : h('span', { class: 'path' }, path);
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
    return h('a', { href: parsed.href, target: '_blank', rel: 'noopener noreferrer' }, label || parsed.href);
  }
  return h('span', { class: 'path' }, url);
}

export function pill(text, kind) {
  return h('span', { class: `pill ${kind || ''}` }, text);
}

export function runPill(status) {
  return pill(status, status === 'succeeded' ? 'ok' : status === 'failed' ? 'err' : status === 'running' ? 'info' : 'warn');
}

const STAT_LABELS = [['seen', 'seen'], ['added', 'added'], ['updated', 'updated'], ['aclUpdated', 'permissions updated'], ['deleted', 'deleted'],
  ['unchanged', 'unchanged'], ['failed', 'failed'], ['skipped', 'skipped'], ['chunksEmbedded', 'chunks embedded']];
export function stats(st) {
  if (!st) return null;
  return h('div', { class: 'stats' }, STAT_LABELS.filter(([k]) => st[k] !== undefined && (st[k] > 0 || k === 'seen')).map(([k, label]) => `${label} ${st[k]}`).join(' · '));
}

// ---- Feedback, dialogs, downloads -------------------------------------------------------------

let statusTimer;
export function announce(text) {
  const el = document.getElementById('status');
  el.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { el.textContent = ''; }, 6000);
}

export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' }, err instanceof ApiError && err.status === 403
    ? `${err.message} — this token does not have that role.` : err.message);
}

/**
 * A modal dialog built from `content(form)`; resolves with the form's values when submitted with
 * the primary button, or null when cancelled (Esc or Cancel). Focus returns where it was.
 */
export function dialog({ title, content, submit = 'Save', danger = false, onSubmit, cancel = true }) {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const errorSlot = h('div');
    const form = h('form', { method: 'dialog' });
    const titleId = `dlg${++fieldIds}`;
    const dlg = h('dialog', { 'aria-labelledby': titleId }, form);
    append(form, [h('h2', { id: titleId }, title), content(form), errorSlot,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok' }, submit),
        cancel ? h('button', { type: 'button', onclick: () => dlg.close('cancel') }, 'Cancel') : null)]);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const values = Object.fromEntries(new window.FormData(form));
      if (onSubmit) {
        try {
          errorSlot.replaceChildren();
          await onSubmit(values);
        } catch (err) {
          errorSlot.replaceChildren(errorBox(err));
          return;
        }
      }
      dlg.close('ok');
      resolve(values);
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (dlg.returnValue !== 'ok') resolve(null);
      if (before && before.focus) before.focus();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function download(blob, filename) {
  const a = h('a', { href: window.URL.createObjectURL(blob instanceof Blob ? blob : new Blob([blob])), download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}

export function table(columns, rows, empty) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.length ? rows.map((cells) => h('tr', {}, cells.map((cell, i) => h('td', { 'data-label': columns[i] || null }, cell))))
      : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty)))));
}

// ---- Router -----------------------------------------------------------------------------------

const routes = [];
export function route(pattern, view) { routes.push([pattern, view]); }

let cleanup = null;
let generation = 0;
/** Views run with a `live` handle: `live.active` turns false once the person navigates away. */
export async function render() {
  const mine = ++generation;
  if (cleanup) { cleanup(); cleanup = null; }
  const main = document.getElementById('main');
  const hash = window.location.hash.slice(1) || '/sources';
  const [path, query = ''] = hash.split('?');
  for (const a of document.querySelectorAll('#nav a')) {
    if (path.startsWith(`/${a.dataset.section}`) || (a.dataset.section === 'audit' && path.startsWith('/documents'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!token()) {
    main.replaceChildren(h('h1', {}, 'Sign in'), h('p', {}, 'Paste an admin or compliance token in the box above to begin.'),
      h('p', { class: 'hint' }, 'The token stays in this browser tab only (session storage).'));
    return;
  }
  const live = { active: true, timers: [] };
  cleanup = () => { live.active = false; live.timers.forEach(clearTimeout); };
  for (const [pattern, view] of routes) {
    const m = pattern.exec(path);
    if (!m) continue;
    const params = new window.URLSearchParams(query);
    try {
      const node = await view({ match: m, params, live });
      if (mine !== generation) return;
      main.replaceChildren(node);
    } catch (err) {
      if (mine !== generation) return;
      main.replaceChildren(h('h1', {}, 'Something went wrong'), errorBox(err));
    }
    return;
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/sources' }, 'Back to sources')));
}

/** Re-runs `fn` after `ms` while the view is on screen (live progress without reloading). */
export function every(live, ms, fn) {
  const tick = async () => {
    if (!live.active) return;
    try { await fn(); } catch { /* the next tick tries again */ }
    if (live.active) live.timers.push(setTimeout(tick, ms));
  };
  live.timers.push(setTimeout(tick, ms));
}

export function go(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

/** Source names for ids, for admins (GET /v1/sources) and reviewers (the freshness summary) alike. */
let sourceCache = null;
export async function sourceNames() {
  if (sourceCache) return sourceCache;
  let list;
  try {
    list = (await api('/v1/sources')).sources.map((s) => ({ id: s.id, name: s.name }));
  } catch {
    try { list = (await api('/v1/freshness/summary')).sources.map((s) => ({ id: s.sourceId, name: s.name })); } catch { list = []; }
  }
  sourceCache = new Map(list.map((s) => [s.id, s.name]));
  setTimeout(() => { sourceCache = null; }, 15000);
  return sourceCache;
}
export function forgetSources() { sourceCache = null; }

function start() {
  tokenInput().value = token();
  document.getElementById('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('clearance-token', tokenInput().value.trim());
    forgetSources();
    announce(token() ? 'Token saved for this tab.' : 'Signed out.');
    render();
  });
  window.addEventListener('hashchange', () => { render(); document.getElementById('main').focus({ preventScroll: true }); });
  for (const el of document.querySelectorAll('#signin input, #signin button')) el.disabled = false;
  render();
}

// Views register their routes when imported; start once they all have.
Promise.all([import('./admin.js'), import('./review.js')]).then(start);

/* global window */
// The compliance side: freshness alerts (filter, snooze, acknowledge, history, CSV), the audit
// trail (who received which documents, through which agent) and a document's access panel.
import { announce, api, dialog, docLink, download, errorBox, field, go, h, pill, route, sourceNames, table, time } from './app.js';

const KINDS = [['', 'Any kind'], ['document', 'Stale document'], ['index_lag', 'Index lagging'], ['sync_failing', 'Sync failing']];
const STATUSES = [['open', 'Open'], ['acknowledged', 'Acknowledged'], ['resolved', 'Resolved'], ['', 'Any status']];
const kindLabel = (k) => (KINDS.find(([v]) => v === k) || [k, k])[1];

function select(name, options, value) {
  return h('select', { name }, options.map(([v, l]) => h('option', { value: v, selected: v === (value || '') }, l)));
}

function alertStatus(a) {
  if (a.status === 'acknowledged' && a.snoozedUntil) return h('div', {}, pill('snoozed', 'info'), h('div', { class: 'hint' }, 'until ', time(a.snoozedUntil)));
  return pill(a.status, a.status === 'open' ? 'err' : a.status === 'resolved' ? 'ok' : 'info');
}

async function acknowledgeDialog(a, snooze) {
  return dialog({
    title: snooze ? `Snooze "${a.title}"` : `Acknowledge "${a.title}"`,
    submit: snooze ? 'Snooze' : 'Acknowledge',
    content: () => h('div', {},
      h('p', { class: 'hint' }, snooze ? 'The alert re-opens when the snooze ends if the document is still stale.' : 'The alert stays acknowledged until the document is updated or removed.'),
      field('Note for the audit trail', h('textarea', { name: 'note', required: true, maxlength: '2000' })),
      snooze ? field('Snooze for (days)', h('input', { name: 'snoozeDays', type: 'number', min: '1', max: '365', value: '7', required: true })) : null),
    onSubmit: (v) => api(`/v1/freshness/alerts/${a.id}/ack`, { method: 'POST', body: { note: v.note.trim(), ...(snooze ? { snoozeDays: Number(v.snoozeDays) } : {}) } }),
  });
}

async function historyDialog(a) {
  const full = await api(`/v1/freshness/alerts/${a.id}`);
  await dialog({
    title: `History of "${a.title}"`, submit: 'Close', cancel: false,
    content: () => h('div', {},
      h('p', {}, kindLabel(full.kind), ' · ', alertStatus(full), full.ageDays !== null ? ` · ${full.ageDays} days old, limit ${full.expectedMaxAgeDays}` : ''),
      h('ol', { class: 'history' }, full.history.map((e) => h('li', {}, h('strong', {}, e.type.replace(/_/g, ' ')), ' ', time(e.at),
        e.actor ? ` by ${e.actor}` : '', e.note ? h('div', {}, '“', e.note, '”') : null,
        e.details && e.details.snoozedUntil ? h('div', { class: 'hint' }, 'snoozed until ', time(e.details.snoozedUntil)) : null)))),
  });
}

route(/^\/alerts\/?$/, async ({ params }) => {
  const q = { status: params.has('status') ? params.get('status') : 'open', sourceId: params.get('sourceId') || '', kind: params.get('kind') || '', owner: params.get('owner') || '', minAge: params.get('minAge') || '' };
  const server = new window.URLSearchParams();
  for (const k of ['status', 'sourceId', 'kind']) if (q[k]) server.set(k, q[k]);
  const [summary, { alerts }, names] = await Promise.all([api('/v1/freshness/summary'), api(`/v1/freshness/alerts?${server}`), sourceNames()]);
  // Owner and age narrow the list here; status, source and kind are asked of the server (and the CSV).
  const shown = alerts.filter((a) => (!q.owner || (a.owner || '').toLowerCase().includes(q.owner.toLowerCase()))
    && (!q.minAge || (a.ageDays !== null && a.ageDays >= Number(q.minAge))));

  const filters = h('form', { class: 'panel', role: 'search', 'aria-label': 'Filter alerts' },
    h('div', { class: 'row' },
      field('Status', select('status', STATUSES, q.status)),
      field('Source', select('sourceId', [['', 'Any source'], ...[...names].map(([id, n]) => [id, n])], q.sourceId)),
      field('Kind', select('kind', KINDS, q.kind)),
      field('Owner', h('input', { name: 'owner', value: q.owner, autocomplete: 'off' })),
      field('At least (days old)', h('input', { name: 'minAge', type: 'number', min: '0', value: q.minAge })),
      h('button', { type: 'submit', class: 'primary' }, 'Filter'),
      h('button', { type: 'button', onclick: csv, 'aria-describedby': 'csv-scope' }, 'Download CSV')),
    h('p', { class: 'hint', id: 'csv-scope' }, 'The CSV holds every alert of the chosen status, source and kind; owner and age narrow the list on screen.'));
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new window.URLSearchParams();
    for (const [k, v] of new window.FormData(filters)) next.set(k, String(v));
    go(`#/alerts?${next}`);
  });
  async function csv() {
    try {
      download(await api(`/v1/freshness/alerts?${server}`, { accept: 'text/csv' }), 'freshness-alerts.csv');
      announce('CSV downloaded.');
    } catch (err) { announce(err.message); }
  }

  const t = summary.totals;
  const cards = h('div', { class: 'cards', role: 'group', 'aria-label': 'Alert counts' },
    h('div', { class: 'card' }, h('strong', {}, String(t.open)), 'open'),
    h('div', { class: 'card' }, h('strong', {}, String(t.acknowledged)), 'acknowledged'),
    h('div', { class: 'card' }, h('strong', {}, String(t.resolved)), 'resolved'),
    ...summary.sources.map((s) => h('div', { class: 'card' }, h('strong', {}, String(s.alerts.documents.open + s.alerts.indexLag.open + s.alerts.syncFailing.open)), `open in ${s.name}`)));

  const rows = shown.map((a) => [
    h('div', {}, docLink(a.url, a.title), a.kind !== 'document' ? h('div', {}, pill(kindLabel(a.kind), 'warn')) : null),
    names.get(a.sourceId) || a.sourceId,
    a.owner || h('span', { class: 'muted' }, '—'),
    a.ageDays === null ? '—' : h('span', {}, `${a.ageDays} days`, h('div', { class: 'hint' }, `limit ${a.expectedMaxAgeDays}`)),
    time(a.firstFlaggedAt),
    h('div', {}, alertStatus(a), a.note ? h('div', { class: 'hint' }, '“', a.note, '”') : null),
    h('div', { class: 'actions' },
      a.status === 'resolved' ? null : h('button', { type: 'button', 'aria-label': `Acknowledge ${a.title}`, onclick: async () => { if (await acknowledgeDialog(a, false)) { announce('Alert acknowledged.'); go(window.location.hash); } } }, 'Acknowledge'),
      a.status === 'resolved' ? null : h('button', { type: 'button', 'aria-label': `Snooze ${a.title}`, onclick: async () => { if (await acknowledgeDialog(a, true)) { announce('Alert snoozed.'); go(window.location.hash); } } }, 'Snooze'),
      h('button', { type: 'button', 'aria-label': `History of ${a.title}`, onclick: () => historyDialog(a).catch((e) => announce(e.message)) }, 'History'),
      a.documentId ? h('a', { class: 'button', href: `#/documents/${a.documentId}`, 'aria-label': `Access to ${a.title}` }, 'Access') : null),
  ]);
  return h('section', {}, h('h1', {}, 'Freshness alerts'), cards, filters,
    h('p', { class: 'hint', role: 'status' }, `${shown.length} alert${shown.length === 1 ? '' : 's'} shown.`),
    table(['Document', 'Source', 'Owner', 'Age', 'Flagged', 'Status', 'Actions'], rows, 'No alerts match these filters.'));
});

// ---- Audit trail ----------------------------------------------------------------------------------

const day = (d) => d.toISOString().slice(0, 10);
const ACTIONS = ['search', 'mcp.search', 'mcp.call', 'document.fetch', 'document.access', 'access.explain', 'document.quarantine', 'document.unquarantine',
  'source.create', 'source.update', 'source.delete', 'source.sync', 'agent.create', 'agent.update', 'agent.revoke', 'alert.acknowledge'];

function documentsCell(r, names) {
  const docs = r.documents && r.documents.length ? r.documents : (r.documentIds || []).map((id) => ({ id, title: null, url: null, sourceId: null }));
  if (!docs.length) return h('span', { class: 'muted' }, r.action === 'search' ? 'nothing returned' : '—');
  return h('ul', { class: 'plain' }, docs.map((d) => h('li', {},
    h('a', { href: `#/documents/${d.id}`, title: 'Who can see this document, and why' }, d.title || d.id),
    d.sourceId ? h('span', { class: 'hint' }, ` — ${names.get(d.sourceId) || d.sourceId}`) : null)));
}

function recordDialog(r, names) {
  return dialog({
    title: `${r.action} by ${r.actor || r.user || 'unknown'}`, submit: 'Close', cancel: false,
    content: () => h('dl', {},
      h('dt', {}, 'When'), h('dd', {}, time(r.at), ' (', new Date(r.at).toISOString(), ')'),
      h('dt', {}, 'Person'), h('dd', {}, r.actor || r.user || '—'),
      h('dt', {}, 'Agent'), h('dd', {}, r.agent || 'none (direct)'),
      h('dt', {}, 'Outcome'), h('dd', {}, r.outcome || 'ok'),
      r.query ? [h('dt', {}, 'Query'), h('dd', {}, r.query)] : null,
      r.target ? [h('dt', {}, 'Target'), h('dd', { class: 'path' }, r.target)] : null,
      h('dt', {}, 'Documents returned'), h('dd', {}, documentsCell(r, names)),
      r.requestId ? [h('dt', {}, 'Request id'), h('dd', { class: 'path' }, r.requestId)] : null),
  });
}

route(/^\/audit\/?$/, async ({ params }) => {
  const q = Object.fromEntries(['user', 'agent', 'action', 'documentId', 'sourceId', 'from', 'to'].map((k) => [k, params.get(k) || '']));
  const server = new window.URLSearchParams(Object.entries(q).filter(([, v]) => v));
  const [{ records, nextBefore }, names] = await Promise.all([api(`/v1/audit?${server}&limit=200`), sourceNames()]);

  const filters = h('form', { class: 'panel', role: 'search', 'aria-label': 'Filter the audit trail' },
    h('div', { class: 'row' },
      field('Person (email)', h('input', { name: 'user', type: 'email', value: q.user, autocomplete: 'off' })),
      field('Agent', h('input', { name: 'agent', value: q.agent, autocomplete: 'off' })),
      field('Action', h('input', { name: 'action', value: q.action, list: 'audit-actions', autocomplete: 'off' })),
      h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
      field('Source', select('sourceId', [['', 'Any source'], ...names], q.sourceId)),
      field('Document id', h('input', { name: 'documentId', value: q.documentId, autocomplete: 'off' })),
      field('From', h('input', { name: 'from', type: 'date', value: q.from })),
      field('To', h('input', { name: 'to', type: 'date', value: q.to }))),
    h('div', { class: 'actions spaced' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'button', onclick: () => range(7) }, 'Last 7 days'),
      h('button', { type: 'button', onclick: () => range(0) }, 'Today'),
      h('button', { type: 'button', onclick: csv }, 'Download CSV'),
      // The form empties at once: the view re-renders only once the unfiltered trail has loaded,
      // and a search typed in the meantime must not carry the old filters.
      h('a', { class: 'button', href: '#/audit', onclick: () => { for (const el of filters.elements) if (el.name) el.value = ''; } }, 'Clear')));
  const submit = () => {
    const next = new window.URLSearchParams();
    for (const [k, v] of new window.FormData(filters)) if (String(v).trim()) next.set(k, String(v).trim());
    go(`#/audit?${next}`);
  };
  function range(days) {
    filters.elements.from.value = day(new Date(Date.now() - days * 86400000));
    filters.elements.to.value = day(new Date());
    submit();
  }
  filters.addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  async function csv() {
    try {
      download(await api(`/v1/audit?${server}`, { accept: 'text/csv' }), 'audit.csv');
      announce('CSV downloaded.');
    } catch (err) { announce(err.message); }
  }

  const rows = records.map((r) => [
    time(r.at), r.actor || r.user || h('span', { class: 'muted' }, 'unknown'), r.agent || h('span', { class: 'muted' }, 'direct'),
    h('div', {}, r.action, r.outcome && r.outcome !== 'ok' ? h('div', {}, pill(r.outcome, 'err')) : null),
    r.query || (r.target ? h('span', { class: 'path' }, r.target) : ''),
    documentsCell(r, names),
    h('button', { type: 'button', 'aria-label': `Details of the ${r.action} at ${new Date(r.at).toISOString()}`, onclick: () => recordDialog(r, names) }, 'Details'),
  ]);
  return h('section', {}, h('h1', {}, 'Audit trail'),
    h('p', { class: 'hint' }, 'Every search, document fetch, tool call, refused request and admin action, newest first.'),
    filters,
    h('p', { class: 'hint', role: 'status' }, `${records.length} record${records.length === 1 ? '' : 's'}${nextBefore ? ' (the newest; narrow the filters or download the CSV for all)' : ''}.`),
    table(['Time', 'Person', 'Agent', 'Action', 'Query or target', 'Documents returned', ''], rows, 'No records match these filters.'));
});

// ---- A document: who can see it, and why ----------------------------------------------------------

const DENIALS = {
  not_indexed: 'the document is not in the index (never synced, deleted, or failed to index)',
  document_quarantined: 'the document is quarantined',
  source_disabled: 'its source is disabled',
  agent_scope: 'the agent key does not cover its source',
  no_matching_principal: 'no entry of the document\'s permissions names this person or a group they are in',
};

function principal(p) {
  if (p === 'everyone') return 'everyone signed in';
  const [kind, ...rest] = p.split(':');
  const v = rest.join(':');
  if (kind === 'user') return `the person ${v}`;
  if (kind === 'group') return `members of the identity-provider group "${v}"`;
  if (kind === 'domain') return `everyone at ${v}`;
  if (kind === 'sgroup') return `members of the source group ${v.split('/').slice(1).join('/')}`;
  return p;
}

route(/^\/documents\/([^/]+)$/, async ({ match, params }) => {
  const id = decodeURIComponent(match[1]);
  const [access, names] = await Promise.all([api(`/v1/documents/${encodeURIComponent(id)}/access`), sourceNames()]);
  const answer = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', 'aria-labelledby': 'why-title' },
    h('h2', { id: 'why-title' }, 'Why can someone read this?'),
    h('div', { class: 'row' },
      field('Person (email)', h('input', { name: 'user', type: 'email', required: true, value: params.get('user') || '', autocomplete: 'off' })),
      field('Their identity-provider groups (optional)', h('input', { name: 'groups', value: params.get('groups') || '', autocomplete: 'off' }), 'Comma-separated, as in their token.'),
      h('button', { type: 'submit', class: 'primary' }, 'Explain')),
    answer);
  const explain = async (user, groups) => {
    const qs = new window.URLSearchParams({ user, documentId: id });
    if (groups) qs.set('groups', groups);
    const out = await api(`/v1/access/explain?${qs}`);
    answer.replaceChildren(out.allowed
      ? h('div', { class: 'ok-box' }, h('p', { class: 'verdict' }, `Yes: ${out.user} can read this document.`),
        h('ul', {}, out.reasons.map((r) => h('li', {}, 'Granted to ', principal(r.principal), h('span', { class: 'chain' }, ` (${r.principal})`),
          r.via && r.via.length ? h('div', { class: 'chain' }, 'through ', [out.user, ...r.via, r.principal].join(' → ')) : null))))
      : h('div', { class: 'error-box' }, h('p', { class: 'verdict' }, `No: ${out.user} cannot read this document.`),
        h('p', {}, 'Because ', DENIALS[out.denial] || out.denial, '.'),
        out.denials && out.denials.length > 1 ? h('p', {}, 'Also: ', out.denials.slice(1).map((d) => DENIALS[d] || d).join('; '), '.') : null),
      out.asOf ? h('p', { class: 'hint' }, 'As of the sync that finished ', time(out.asOf), '.') : null);
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new window.FormData(form));
    try { await explain(v.user.trim(), v.groups.trim()); } catch (err) { answer.replaceChildren(errorBox(err)); }
  });
  if (params.get('user')) explain(params.get('user'), params.get('groups') || '').catch((err) => answer.replaceChildren(errorBox(err)));

  const quarantine = h('div', { class: 'actions' }, access.quarantined
    ? h('button', { type: 'button', onclick: async () => { await api(`/v1/documents/${encodeURIComponent(id)}/quarantine`, { method: 'DELETE' }).catch((e) => announce(e.message)); go(window.location.hash); } }, 'Lift quarantine')
    : h('button', { type: 'button', class: 'danger', onclick: async () => {
      const ok = await dialog({
        title: 'Quarantine this document?', submit: 'Quarantine', danger: true,
        content: () => field('Reason (kept in the audit trail)', h('textarea', { name: 'reason', required: true })),
        onSubmit: (v) => api(`/v1/documents/${encodeURIComponent(id)}/quarantine`, { method: 'POST', body: { reason: v.reason.trim() } }),
      });
      if (ok) { announce('Document quarantined: hidden from every search and fetch.'); go(window.location.hash); }
    } }, 'Quarantine…'));

  return h('section', {}, h('p', {}, h('a', { href: '#/audit' }, '← Audit trail')),
    h('h1', {}, access.title || id),
    h('div', { class: 'panel' },
      h('p', {}, docLink(access.url), ' · ', names.get(access.sourceId) || access.sourceId),
      access.quarantined ? h('p', {}, pill('quarantined', 'err'), ` by ${access.quarantined.by || 'unknown'}: ${access.quarantined.reason}`) : null,
      access.sourceEnabled === false ? h('p', {}, pill('source disabled', 'warn')) : null,
      access.asOf ? h('p', { class: 'hint' }, 'Permissions as of the sync that finished ', time(access.asOf), '.') : null,
      quarantine),
    form,
    h('section', { class: 'panel', 'aria-labelledby': 'who-title' }, h('h2', { id: 'who-title' }, 'Who can see it'),
      h('h3', {}, 'Permission entries'),
      h('ul', {}, access.principals.map((p) => h('li', {}, principal(p), h('span', { class: 'chain' }, ` (${p})`)))),
      h('h3', {}, 'Known people it reaches'),
      access.users.length ? h('ul', {}, access.users.map((u) => h('li', {}, h('a', { href: `#/documents/${encodeURIComponent(id)}?user=${encodeURIComponent(u)}` }, u))))
        : h('p', { class: 'muted' }, 'No individual person is listed.'),
      access.unenumerable && access.unenumerable.length
        ? h('p', { class: 'hint' }, 'Also reaches people the service cannot list: ', access.unenumerable.map(principal).join('; '), '.') : null));
});

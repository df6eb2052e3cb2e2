/* global window */
// The admin side: sources (add, watch, edit, remove), run history with live progress, agent keys.
import {
  announce, api, ApiError, dialog, duration, errorBox, every, field, forgetSources, go, h, pill, route, runPill, schedule, stats, table, time,
} from './app.js';

const TYPES = {
  filesystem: {
    label: 'Folder (filesystem)',
    config: [['path', 'Folder path', 'An absolute path under one of the allowed roots (FILESYSTEM_ROOTS).', { required: true }]],
    credentials: [],
  },
  sharepoint: {
    label: 'SharePoint / OneDrive',
    config: [['tenantId', 'Tenant ID', 'The Entra ID directory (tenant) id.', { required: true }], ['siteIds', 'Site IDs', 'Comma-separated; empty for all sites.', { list: true }],
      ['driveIds', 'Drive IDs', 'Comma-separated; optional.', { list: true }]],
    credentials: [['clientId', 'Client ID', '', { required: true }], ['clientSecret', 'Client secret', 'Or use a certificate through the API.', { secret: true }]],
  },
  google_drive: {
    label: 'Google Drive',
    config: [['domain', 'Workspace domain', '', { required: true }], ['adminEmail', 'Admin email to act as', '', { required: true }],
      ['driveIds', 'Shared drive IDs', 'Comma-separated.', { list: true }], ['folderIds', 'Folder IDs', 'Comma-separated.', { list: true }]],
    credentials: [['serviceAccountKey', 'Service-account key (JSON)', 'Paste the whole key file.', { json: true, required: true, multiline: true }]],
  },
  confluence: {
    label: 'Confluence Cloud',
    config: [['baseUrl', 'Site URL', 'https://<site>.atlassian.net/wiki', { required: true }], ['spaceKeys', 'Space keys', 'Comma-separated.', { list: true, required: true }]],
    credentials: [['email', 'Account email', '', { required: true }], ['apiToken', 'API token', '', { secret: true, required: true }]],
  },
};

const SCHEDULES = [['', 'Manual only'], ['900', 'Every 15 minutes'], ['3600', 'Every hour'], ['21600', 'Every 6 hours'], ['86400', 'Daily'], ['604800', 'Weekly']];

function scheduleSelect(current, name = 'schedule') {
  const value = current && current.intervalSeconds ? String(current.intervalSeconds) : '';
  const options = SCHEDULES.some(([v]) => v === value) ? SCHEDULES : [...SCHEDULES, [value, schedule(current)]];
  return h('select', { name }, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

const isEnabled = (s) => (s.enabled === undefined ? s.status === 'active' : s.enabled !== false);
const isActive = (run) => run && (run.status === 'queued' || run.status === 'running');

function configSummary(s) {
  if (s.type === 'filesystem') return h('span', { class: 'path' }, s.config.path);
  const parts = Object.entries(s.config || {}).filter(([, v]) => v !== undefined && v !== null && String(v) !== '')
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  return h('span', { class: 'muted' }, parts.join(' · '));
}

function lastRunCell(run) {
  if (!run) return h('span', { class: 'muted' }, 'never synced');
  return h('div', {}, runPill(run.status), ' ', time(run.finishedAt || run.startedAt || run.createdAt), stats(run.stats),
    run.error ? h('div', { class: 'err' }, run.error) : null,
    isActive(run) ? h('progress', { 'aria-label': `sync ${run.status}` }) : null);
}

async function syncNow(source, mode) {
  const { runId } = await api(`/v1/sources/${source.id}/sync`, { method: 'POST', body: mode ? { mode } : {} });
  announce(`Sync of ${source.name} queued.`);
  return runId;
}

// ---- Sources list -----------------------------------------------------------------------------

route(/^\/sources\/?$/, async ({ live }) => {
  const body = h('div');
  let shown = '';
  const draw = async () => {
    const { sources } = await api('/v1/sources');
    const runs = await Promise.all(sources.map((s) => api(`/v1/sources/${s.id}/runs`).then((r) => r.runs[0], () => null)));
    // Repaint only on change, so focus and open details survive the polling.
    const signature = JSON.stringify([sources, runs]);
    if (signature === shown) return;
    shown = signature;
    body.replaceChildren(table(['Source', 'Type', 'Schedule', 'Last run', 'Actions'], sources.map((s, i) => [
      h('div', {}, h('a', { href: `#/sources/${s.id}` }, s.name), h('br'), configSummary(s), isEnabled(s) ? null : h('div', {}, pill('disabled', 'warn'))),
      TYPES[s.type] ? TYPES[s.type].label : s.type,
      schedule(s.schedule),
      lastRunCell(runs[i]),
      h('div', { class: 'actions' }, h('button', {
        type: 'button', 'aria-label': `Sync now: ${s.name}`, disabled: isActive(runs[i]) || !isEnabled(s),
        onclick: async () => { await syncNow(s).catch((e) => announce(e.message)); draw(); },
      }, 'Sync now')),
    ]), 'No sources yet. Add one to start indexing.'));
    return runs.some(isActive);
  };
  await draw();
  // Live: refresh while anything is queued or running, slowly otherwise.
  every(live, 2000, draw);
  return h('section', {}, h('div', { class: 'row' }, h('h1', {}, 'Sources'), h('a', { class: 'button primary push', href: '#/sources/new' }, 'Add source')), body);
});

// ---- Add a source -------------------------------------------------------------------------------

function typeFields(type, form) {
  const spec = TYPES[type];
  const control = ([key, , , opt], prefix) => {
    const name = `${prefix}.${key}`;
    if (opt.multiline) return h('textarea', { name, required: opt.required, autocomplete: 'off', spellcheck: 'false' });
    return h('input', { name, type: opt.secret ? 'password' : 'text', required: opt.required, autocomplete: opt.secret ? 'new-password' : 'off' });
  };
  const cfg = spec.config.map((f) => field(f[1], control(f, 'config'), f[2]));
  const creds = spec.credentials.map((f) => field(f[1], control(f, 'credentials'), f[2]));
  form.querySelector('[data-slot=config]').replaceChildren(...cfg);
  form.querySelector('[data-slot=credentials]').replaceChildren(...(creds.length
    ? [h('p', { class: 'hint' }, 'Credentials are write-only: they are encrypted at rest and never shown again.'), ...creds] : []));
}

function collect(type, values) {
  const spec = TYPES[type];
  const out = { config: {}, credentials: {} };
  for (const [group, fields] of [['config', spec.config], ['credentials', spec.credentials]]) {
    for (const [key, label, , opt] of fields) {
      const raw = (values[`${group}.${key}`] || '').trim();
      if (!raw) continue;
      if (opt.list) out[group][key] = raw.split(',').map((v) => v.trim()).filter(Boolean);
      else if (opt.json) {
        try { out[group][key] = JSON.parse(raw); } catch { throw new ApiError(400, 'Bad input', `${label} is not valid JSON`); }
      } else out[group][key] = raw;
    }
  }
  return out;
}

route(/^\/sources\/new$/, async () => {
  const error = h('div');
  const typeSelect = h('select', { name: 'type' }, Object.entries(TYPES).map(([v, t]) => h('option', { value: v }, t.label)));
  const form = h('form', { class: 'panel', novalidate: false },
    h('div', { class: 'row' }, field('Type', typeSelect), field('Name', h('input', { name: 'name', required: true, autocomplete: 'off' }))),
    h('h2', {}, 'Connection'), h('div', { class: 'row', 'data-slot': 'config' }),
    h('div', { 'data-slot': 'credentials' }),
    h('h2', {}, 'Schedule and freshness'),
    h('div', { class: 'row' }, field('Sync schedule', scheduleSelect(null)),
      field('Review documents after (days)', h('input', { name: 'maxAgeDays', type: 'number', min: '0', inputmode: 'numeric' }), 'Empty: documents never go stale.')),
    h('p', {}, h('label', {}, h('input', { type: 'checkbox', name: 'syncNow', checked: true }), ' Start the first sync now')),
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Test connection and add'), h('a', { class: 'button', href: '#/sources' }, 'Cancel')));
  typeFields('filesystem', form);
  typeSelect.addEventListener('change', () => typeFields(typeSelect.value, form));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new window.FormData(form));
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    error.replaceChildren(h('p', { class: 'muted', role: 'status' }, 'Testing the connection…'));
    try {
      const { config, credentials } = collect(values.type, values);
      const body = { name: values.name.trim(), type: values.type, config };
      if (Object.keys(credentials).length) body.credentials = credentials;
      if (values.schedule) body.schedule = { intervalSeconds: Number(values.schedule) };
      if (values.maxAgeDays !== '') body.freshness = { maxAgeDays: Number(values.maxAgeDays) };
      const source = await api('/v1/sources', { method: 'POST', body });
      forgetSources();
      if (values.syncNow) await syncNow(source);
      announce(`Added ${source.name}.`);
      go(`#/sources/${source.id}`);
    } catch (err) {
      error.replaceChildren(errorBox(err.status === 422 ? new Error(`The connection test failed: ${err.message}`) : err));
      button.disabled = false;
    }
  });
  return h('section', {}, h('h1', {}, 'Add a source'), form);
});

// ---- One source ---------------------------------------------------------------------------------

const MATCH_KINDS = [['pathGlob', 'Path matches (glob)'], ['titleRegex', 'Title matches (regex)'], ['label', 'Has label'], ['mimeType', 'MIME type is']];

function rulesEditor(source) {
  const policy = source.freshness || { maxAgeDays: null, rules: [] };
  const rules = (policy.rules || []).map((r) => {
    const [kind, value] = Object.entries(r.match)[0] || ['pathGlob', ''];
    return { kind, value, maxAgeDays: r.maxAgeDays };
  });
  const list = h('div');
  const fallbackPreview = h('span', { class: 'hint' });
  const result = h('div', { role: 'status' });
  const defaultInput = h('input', { type: 'number', min: '0', name: 'default', value: policy.maxAgeDays === null || policy.maxAgeDays === undefined ? '' : String(policy.maxAgeDays) });

  const current = () => ({
    maxAgeDays: defaultInput.value === '' ? null : Number(defaultInput.value),
    rules: rules.filter((r) => r.value.trim()).map((r) => ({ match: { [r.kind]: r.value.trim() }, maxAgeDays: r.maxAgeDays === '' || r.maxAgeDays === null ? null : Number(r.maxAgeDays) })),
    ...(policy.webhookUrl ? { webhookUrl: policy.webhookUrl } : {}),
  });

  const draw = () => {
    list.replaceChildren(...rules.map((r, i) => {
      const n = i + 1;
      return h('div', { class: 'rule', dataset: { rule: String(i) } },
        field(`Rule ${n}: match`, h('select', { onchange: (e) => { r.kind = e.target.value; } }, MATCH_KINDS.map(([v, l]) => h('option', { value: v, selected: v === r.kind }, l)))),
        field(`Rule ${n}: pattern`, h('input', { value: r.value, oninput: (e) => { r.value = e.target.value; }, autocomplete: 'off' })),
        field(`Rule ${n}: review after (days)`, h('input', { type: 'number', min: '0', value: r.maxAgeDays === null ? '' : String(r.maxAgeDays), oninput: (e) => { r.maxAgeDays = e.target.value; } }), 'Empty: never stale.'),
        h('div', { class: 'actions' },
          h('button', { type: 'button', 'aria-label': `Move rule ${n} up`, disabled: i === 0, onclick: () => { rules.splice(i - 1, 0, rules.splice(i, 1)[0]); draw(); } }, '↑'),
          h('button', { type: 'button', 'aria-label': `Remove rule ${n}`, onclick: () => { rules.splice(i, 1); draw(); } }, 'Remove')),
        h('div', { class: 'preview', 'data-preview': String(i) }));
    }));
  };
  draw();

  const preview = async () => {
    const p = await api(`/v1/sources/${source.id}/freshness/preview`, { method: 'POST', body: current() });
    p.rules.forEach((r, i) => {
      const slot = list.querySelector(`[data-preview="${i}"]`);
      if (slot) slot.textContent = `Decides ${r.decides} of ${p.documents} documents; ${r.stale} stale under this rule.`;
    });
    fallbackPreview.textContent = `The default decides ${p.fallback.decides} documents; ${p.fallback.stale} stale.`;
    result.replaceChildren(h('p', {}, `${p.stale} of ${p.documents} documents would be stale; ${p.exempt} exempt.`));
  };

  const form = h('form', { class: 'panel', 'aria-labelledby': 'policy-title' },
    h('h2', { id: 'policy-title' }, 'Freshness policy'),
    h('p', { class: 'hint' }, 'The first matching rule decides a document\'s review interval; documents no rule matches use the default.'),
    list,
    h('p', {}, h('button', { type: 'button', onclick: () => { rules.push({ kind: 'pathGlob', value: '', maxAgeDays: '' }); draw(); } }, 'Add rule')),
    h('div', { class: 'row' }, field('Default: review after (days)', defaultInput, 'Empty: never stale.'), fallbackPreview),
    result,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => preview().catch((e) => result.replaceChildren(errorBox(e))) }, 'Preview'),
      h('button', { type: 'submit', class: 'primary' }, 'Save policy')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api(`/v1/sources/${source.id}`, { method: 'PATCH', body: { freshness: current() } });
      result.replaceChildren(h('div', { class: 'ok-box' }, 'Policy saved; alerts are being re-evaluated.'));
      announce('Freshness policy saved.');
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  });
  return form;
}

function runsTable(runs) {
  return table(['Started', 'Mode', 'Status', 'Duration', 'What changed', 'Warnings and errors'], runs.map((r) => [
    time(r.startedAt || r.createdAt), r.mode, runPill(r.status),
    r.startedAt ? duration(new Date(r.finishedAt || Date.now()) - new Date(r.startedAt)) : '—',
    stats(r.stats),
    h('div', {}, r.error ? h('div', { class: 'err' }, r.error) : null,
      r.warnings && r.warnings.length ? h('details', {}, h('summary', {}, `${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}`),
        h('ul', {}, r.warnings.slice(0, 50).map((w) => h('li', {}, w)))) : (r.error ? null : h('span', { class: 'muted' }, 'none'))),
  ]), 'No runs yet.');
}

route(/^\/sources\/([0-9a-f-]{36})$/, async ({ match, live }) => {
  const id = match[1];
  let source = await api(`/v1/sources/${id}`);
  const heading = h('h1');
  const meta = h('div', { class: 'panel' });
  const progress = h('section', { 'aria-live': 'polite', 'aria-labelledby': 'progress-title' });
  const history = h('section', { 'aria-labelledby': 'history-title' });

  const drawSource = () => {
    heading.replaceChildren(source.name, ...(isEnabled(source) ? [] : [' ', pill('disabled', 'warn')]));
    meta.replaceChildren(
      h('p', {}, h('strong', {}, TYPES[source.type] ? TYPES[source.type].label : source.type), ' · ', configSummary(source)),
      h('p', { class: 'muted' }, 'Added ', time(source.createdAt), ' · syncs ', schedule(source.schedule)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', disabled: !isEnabled(source), onclick: () => syncNow(source).then(drawRuns, (e) => announce(e.message)) }, 'Sync now'),
        h('button', { type: 'button', disabled: !isEnabled(source), onclick: () => syncNow(source, 'full').then(drawRuns, (e) => announce(e.message)) }, 'Full sync'),
        h('button', { type: 'button', onclick: toggle }, isEnabled(source) ? 'Disable' : 'Enable'),
        h('button', { type: 'button', class: 'danger', onclick: remove }, 'Remove…')));
  };

  let shownRuns = '';
  const drawRuns = async () => {
    const { runs } = await api(`/v1/sources/${id}/runs`);
    const active = runs.find(isActive);
    const signature = JSON.stringify(runs);
    if (signature === shownRuns) return active;
    shownRuns = signature;
    progress.replaceChildren(h('h2', { id: 'progress-title' }, 'Current sync'), active
      ? h('div', { class: 'panel' }, runPill(active.status), ' started ', time(active.startedAt || active.createdAt), h('br'),
        h('progress', { 'aria-label': 'sync progress' }), stats(active.stats))
      : h('p', { class: 'muted' }, runs[0] ? ['Idle. Last sync ', runs[0].status, ' ', time(runs[0].finishedAt || runs[0].startedAt), '.'] : 'Never synced.'));
    history.replaceChildren(h('h2', { id: 'history-title' }, 'Run history'), runsTable(runs));
    return active;
  };

  async function toggle() {
    const enable = !isEnabled(source);
    const body = source.enabled === undefined ? { status: enable ? 'active' : 'paused' } : { enabled: enable };
    try {
      source = await api(`/v1/sources/${id}`, { method: 'PATCH', body });
      announce(enable ? `${source.name} enabled.` : `${source.name} disabled: its documents are hidden from search.`);
      drawSource();
    } catch (err) { announce(err.message); }
  }

  async function remove() {
    const ok = await dialog({
      title: `Remove ${source.name}?`, submit: 'Remove source', danger: true,
      content: () => h('div', {}, h('p', {}, 'This deletes every document, vector and record indexed from this source. It cannot be undone.'),
        field(`Type the source's name (${source.name}) to confirm`, h('input', { name: 'confirm', required: true, autocomplete: 'off' }))),
      onSubmit: async (v) => {
        if (v.confirm.trim() !== source.name) throw new Error('The name does not match.');
        await api(`/v1/sources/${id}`, { method: 'DELETE' });
      },
    });
    if (ok) { forgetSources(); announce(`Removed ${source.name}.`); go('#/sources'); }
  }

  const scheduleForm = h('form', { class: 'panel', 'aria-labelledby': 'schedule-title' },
    h('h2', { id: 'schedule-title' }, 'Schedule'),
    h('div', { class: 'row' }, field('Sync', scheduleSelect(source.schedule)), h('button', { type: 'submit' }, 'Save schedule')));
  scheduleForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = scheduleForm.querySelector('select').value;
    try {
      source = await api(`/v1/sources/${id}`, { method: 'PATCH', body: { schedule: v ? { intervalSeconds: Number(v) } : null } });
      announce(`Schedule saved: ${schedule(source.schedule)}.`);
      drawSource();
    } catch (err) { announce(err.message); }
  });

  let credentialsForm = null;
  const spec = TYPES[source.type];
  if (spec && spec.credentials.length) {
    credentialsForm = h('form', { class: 'panel', 'aria-labelledby': 'cred-title' }, h('h2', { id: 'cred-title' }, 'Credentials'),
      h('p', { class: 'hint' }, 'Stored encrypted and never shown. Enter new ones to replace them; the connection is tested first.'),
      h('div', { 'data-slot': 'config', hidden: true }), h('div', { 'data-slot': 'credentials' }), h('button', { type: 'submit' }, 'Replace credentials'));
    typeFields(source.type, credentialsForm);
    credentialsForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const { credentials } = collect(source.type, Object.fromEntries(new window.FormData(credentialsForm)));
        await api(`/v1/sources/${id}`, { method: 'PATCH', body: { credentials } });
        credentialsForm.reset();
        announce('Credentials replaced.');
      } catch (err) { announce(err.message); }
    });
  }

  drawSource();
  await drawRuns();
  every(live, 1000, drawRuns);
  return h('section', {}, h('p', {}, h('a', { href: '#/sources' }, '← All sources')), heading, meta, progress, scheduleForm, rulesEditor(source), credentialsForm, history);
});

// ---- Agent keys ---------------------------------------------------------------------------------

route(/^\/agents\/?$/, async () => {
  const [{ agents }, { sources }] = await Promise.all([api('/v1/agents'), api('/v1/sources')]);
  const names = new Map(sources.map((s) => [s.id, s.name]));
  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-agent' },
    h('h2', { id: 'new-agent' }, 'New agent key'),
    h('div', { class: 'row' }, field('Agent name', h('input', { name: 'name', required: true, autocomplete: 'off' })),
      field('Expires (optional)', h('input', { name: 'expiresAt', type: 'date' }))),
    h('fieldset', {}, h('legend', {}, 'Sources this agent may search'),
      sources.length ? sources.map((s) => h('label', { class: 'block' }, h('input', { type: 'checkbox', name: 'source', value: s.id }), ' ', s.name))
        : h('p', { class: 'muted' }, 'No sources yet.')),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new window.FormData(form);
    const body = { name: String(data.get('name')).trim(), sourceIds: data.getAll('source') };
    if (data.get('expiresAt')) body.expiresAt = new Date(`${data.get('expiresAt')}T23:59:59Z`).toISOString();
    try {
      const created = await api('/v1/agents', { method: 'POST', body });
      await dialog({
        title: `Key for ${created.name}`, submit: 'I have copied it',
        content: () => h('div', {}, h('p', {}, 'This key is shown once. Give it to the agent as the X-Agent-Key header.'),
          field('Agent key', h('input', { readonly: true, value: created.key, class: 'path wide', onfocus: (ev) => ev.target.select() }))),
      });
      go('#/agents');
    } catch (err) { announce(err.message); }
  });
  const rows = agents.map((a) => [
    a.name, (a.sourceIds || []).map((sid) => names.get(sid) || sid).join(', ') || h('span', { class: 'muted' }, 'none'),
    time(a.createdAt), a.expiresAt ? time(a.expiresAt) : h('span', { class: 'muted' }, 'never'),
    a.status ? pill(a.status, a.status === 'active' ? 'ok' : 'warn') : pill('active', 'ok'),
    a.status && a.status !== 'active' ? '' : h('button', {
      type: 'button', class: 'danger', 'aria-label': `Revoke ${a.name}`,
      onclick: async () => {
        const ok = await dialog({
          title: `Revoke ${a.name}?`, submit: 'Revoke key', danger: true,
          content: () => h('p', {}, 'The agent\'s next request is refused. This cannot be undone.'),
          onSubmit: () => api(`/v1/agents/${a.id}`, { method: 'DELETE' }),
        });
        if (ok) { announce(`Revoked ${a.name}.`); go('#/agents'); }
      },
    }, 'Revoke'),
  ]);
  return h('section', {}, h('h1', {}, 'Agent keys'),
    h('p', { class: 'hint' }, 'An agent key narrows what an assistant may search to some sources; it never widens what the user may read.'),
    table(['Agent', 'Sources', 'Created', 'Expires', 'Status', 'Actions'], rows, 'No agent keys yet.'), form);
});

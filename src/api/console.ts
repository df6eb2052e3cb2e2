/**
 * The web console: one static page that talks to the same JSON API with the token the person
 * pastes in (kept in sessionStorage only). No build step, no framework.
 */
export const consoleHtml = /* html */ `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clearance console</title><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
 header{background:#1d2430;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:center}
 header h1{font-size:18px;margin:0} header input{flex:1;max-width:420px;padding:5px}
 nav button{background:none;border:0;color:#cfd6e4;font-size:14px;cursor:pointer;padding:4px 8px}
 nav button.active{color:#fff;border-bottom:2px solid #6ea8fe}
 main{padding:20px} table{border-collapse:collapse;width:100%;background:#fff}
 th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
 th{background:#eef1f5} .muted{color:#6b7587} .err{color:#b42318} .ok{color:#067647}
 .pill{display:inline-block;padding:1px 8px;border-radius:10px;background:#eef1f5}
 form.inline{display:flex;gap:8px;margin:0 0 12px} form.inline input{padding:5px}
 button.act{padding:3px 10px;cursor:pointer}
</style></head>
<body>
<header><h1>Clearance</h1>
 <input id="token" type="password" placeholder="Bearer token (admin or compliance)" autocomplete="off">
 <nav><button data-tab="sources" class="active">Sources</button><button data-tab="alerts">Freshness</button><button data-tab="audit">Audit</button></nav>
</header>
<main id="main"><p class="muted">Paste a token to begin.</p></main>
<script>
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
let tab = 'sources';
$('#token').value = sessionStorage.getItem('clearance-token') || '';
$('#token').addEventListener('change', (e) => { sessionStorage.setItem('clearance-token', e.target.value.trim()); render(); });
document.querySelectorAll('nav button').forEach((b) => b.addEventListener('click', () => {
  document.querySelectorAll('nav button').forEach((x) => x.classList.toggle('active', x === b)); tab = b.dataset.tab; render();
}));
async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { authorization: 'Bearer ' + $('#token').value.trim(), 'content-type': 'application/json', ...(opts.headers || {}) } });
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body.detail || body.title || res.statusText);
  return body;
}
let renders = 0;
async function render() {
  const main = $('#main');
  // Renders overlap (a token change and a tab click); only the latest may paint.
  const mine = ++renders;
  if (!$('#token').value.trim()) { main.innerHTML = '<p class="muted">Paste a token to begin.</p>'; return; }
  let html;
  try { html = await views[tab](); } catch (e) { html = '<p class="err">' + esc(e.message) + '</p>'; }
  if (mine !== renders) return;
  main.innerHTML = html; bind();
}
const views = {
  async sources() {
    const { sources } = await api('/v1/sources');
    const rows = await Promise.all(sources.map(async (s) => {
      const { runs } = await api('/v1/sources/' + s.id + '/runs');
      const r = runs[0];
      const last = r ? '<span class="pill ' + (r.status === 'failed' ? 'err' : r.status === 'succeeded' ? 'ok' : '') + '">' + esc(r.status) + '</span> ' +
        esc(r.finishedAt || r.startedAt || '') + '<div class="muted">' + Object.entries(r.stats).map(([k, v]) => k + ' ' + v).join(' · ') + '</div>' +
        (r.error ? '<div class="err">' + esc(r.error) + '</div>' : '') + (r.warnings?.length ? '<div class="muted">' + r.warnings.slice(0, 5).map(esc).join('<br>') + '</div>' : '') : '<span class="muted">never synced</span>';
      return '<tr><td><b>' + esc(s.name) + '</b><div class="muted">' + esc(s.id) + '</div></td><td>' + esc(s.type) + '</td><td>' +
        (s.schedule ? 'every ' + s.schedule.intervalSeconds + ' s' : '<span class="muted">manual</span>') + '</td><td>' + last +
        '</td><td><button class="act" data-sync="' + s.id + '">Sync</button></td></tr>';
    }));
    return '<table><tr><th>Source</th><th>Type</th><th>Schedule</th><th>Last run</th><th></th></tr>' + (rows.join('') || '<tr><td colspan=5 class="muted">No sources yet.</td></tr>') + '</table>';
  },
  async alerts() {
    const { alerts } = await api('/v1/freshness/alerts?status=open');
    return '<p><a href="#" id="csv">Download CSV</a></p><table><tr><th>Document</th><th>Owner</th><th>Age (days)</th><th>Limit</th><th>Since</th><th></th></tr>' +
      (alerts.map((a) => '<tr><td><a href="' + esc(a.url) + '">' + esc(a.title) + '</a></td><td>' + esc(a.owner || '') + '</td><td>' + esc(a.ageDays) + '</td><td>' +
        esc(a.expectedMaxAgeDays) + '</td><td>' + esc(a.firstFlaggedAt) + '</td><td><button class="act" data-ack="' + a.id + '">Acknowledge</button></td></tr>').join('') ||
        '<tr><td colspan=6 class="muted">No open alerts.</td></tr>') + '</table>';
  },
  async audit() {
    const q = new URLSearchParams(location.hash.slice(1));
    const { records } = await api('/v1/audit?' + q);
    return '<form class="inline" id="auditq"><input name="user" placeholder="user email" value="' + esc(q.get('user') || '') + '"><input name="agent" placeholder="agent" value="' + esc(q.get('agent') || '') + '"><button>Search</button></form>' +
      '<table><tr><th>Time</th><th>User</th><th>Agent</th><th>Query</th><th>Documents returned</th></tr>' +
      records.map((r) => '<tr><td>' + esc(r.at) + '</td><td>' + esc(r.user) + '</td><td>' + esc(r.agent || '') + '</td><td>' + esc(r.query) + '</td><td>' + r.documentIds.length + '</td></tr>').join('') + '</table>';
  },
};
function bind() {
  document.querySelectorAll('[data-sync]').forEach((b) => b.addEventListener('click', async () => { await api('/v1/sources/' + b.dataset.sync + '/sync', { method: 'POST', body: '{}' }); setTimeout(render, 500); }));
  document.querySelectorAll('[data-ack]').forEach((b) => b.addEventListener('click', async () => {
    const note = prompt('Note for the audit trail'); if (!note) return;
    await api('/v1/freshness/alerts/' + b.dataset.ack + '/ack', { method: 'POST', body: JSON.stringify({ note }) }); render();
  }));
  const csv = $('#csv'); if (csv) csv.addEventListener('click', async (e) => { e.preventDefault();
    const res = await fetch('/v1/freshness/alerts?status=open', { headers: { authorization: 'Bearer ' + $('#token').value.trim(), accept: 'text/csv' } });
    const a = document.createElement('a'); a.href = URL.createObjectURL(await res.blob()); a.download = 'freshness-alerts.csv'; a.click(); });
  const f = $('#auditq'); if (f) f.addEventListener('submit', (e) => { e.preventDefault(); location.hash = new URLSearchParams(new FormData(f)).toString(); render(); });
}
render();
</script></body></html>`;

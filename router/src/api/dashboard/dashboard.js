// The agentfs dashboard's script: keeps the table the router rendered
// current from its event stream (/api/events), without reloading. It makes
// the same markup as the router (router/src/api/dashboard.rs), and sets
// text, never markup, so nothing it shows can become code.
'use strict';

const COLUMNS = 11;
const table = document.getElementById('instances');
const live = document.getElementById('live');
const omittedBox = document.getElementById('omitted');

/** An element with attributes and children (strings become text). */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** A duration in its two largest units: 42s, 3m 12s, 5h 2m, 2d 3h. */
function span(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hr = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function ago(ms) {
  return ms < 1000 ? 'just now' : `${span(ms).split(' ')[0]} ago`;
}

/** A time as how long ago it was; the tick below keeps it current. */
function when(at, now) {
  const t = Date.parse(at || '');
  return h('time', { datetime: at || '' }, Number.isNaN(t) ? '' : ago(now - t));
}

/** Only http:// URLs (the router's own) become links. */
function isHttp(url) {
  return /^http:\/\//.test(url || '');
}

function link(url, text = url) {
  return isHttp(url) ? h('a', { href: url }, text) : text;
}

function ports(list) {
  return (list || []).map((port) => {
    const links = [];
    for (const url of port.urls || []) links.push(links.length ? ' ' : '', link(url));
    const down = port.down ? [' ', h('span', { class: 'down' }, 'down')] : [];
    return h('div', { class: 'port' }, h('span', { class: 'port-num' }, port.port),
      h('span', { class: 'urls' }, ...links, ...down));
  });
}

function lastError(error, now) {
  return error && error.message ? [error.message, ' ', when(error.at, now)] : [];
}

function recent(list, now) {
  if (!list || list.length === 0) return h('details', {}, h('summary', {}, 'No requests yet'));
  const head = h('thead', {}, h('tr', {}, ...['When', 'Method', 'Path', 'Status', 'Duration'].map((t) => h('th', {}, t))));
  const rows = list.map((r) => h('tr', {},
    h('td', {}, when(r.at, now)),
    h('td', {}, r.method),
    h('td', { class: 'path' }, r.path),
    h('td', { class: `status s${Math.floor(r.status / 100)}` }, r.status),
    h('td', { class: 'num' }, `${r.duration_ms} ms`)));
  return h('details', {}, h('summary', {}, `Last requests (${list.length})`),
    h('table', { class: 'requests' }, head, h('tbody', {}, ...rows)));
}

function row(inst, now) {
  const started = inst.started_at || '';
  const since = Date.parse(started);
  const body = h('tbody', { class: 'instance', 'data-key': `${inst.app}/${inst.instance}` });
  body.append(h('tr', {},
    h('td', { class: 'app' }, inst.app),
    h('td', { class: 'name' }, link(inst.url, inst.instance)),
    h('td', {}, inst.kind ?? ''),
    h('td', { class: 'num pid' }, inst.pid ?? ''),
    h('td', { class: 'ports' }, ...ports(inst.ports)),
    h('td', { class: 'num uptime', 'data-since': started }, Number.isNaN(since) ? '' : span(now - since)),
    h('td', { class: 'num requests' }, inst.requests),
    h('td', { class: 'num in-flight' }, inst.in_flight),
    h('td', { class: 'error' }, ...lastError(inst.last_error, now)),
    h('td', { class: 'cwd' }, inst.cwd ?? ''),
    h('td', { class: 'branch' }, inst.branch ?? '')));
  body.append(h('tr', { class: 'recent' }, h('td', { colspan: COLUMNS }, recent(inst.recent, now))));
  return body;
}

function emptyRow() {
  return h('tbody', { class: 'empty' }, h('tr', {}, h('td', { colspan: COLUMNS },
    'No apps are running. Start one with ', h('code', {}, 'agentfs wrap -- CMD'), '.')));
}

function omitted(data, shown) {
  const out = [];
  const left = data.total - shown;
  if (left > 0) {
    out.push(h('p', { class: 'omitted' },
      `Showing ${shown} of ${data.total} instances (from ${data.offset + 1}); ${left} not listed here: see `,
      h('a', { href: '/api/routes' }, '/api/routes'), ' (', h('code', {}, '?limit=N&offset=M'), ' pages it).'));
  }
  if (data.offset + shown < data.total) {
    out.push(h('p', {}, h('a', { href: `/?offset=${data.offset + shown}` }, `Next ${data.limit} instances`)));
  }
  return out;
}

function render(data) {
  const now = Date.now();
  const open = new Set();
  for (const body of table.querySelectorAll('tbody.instance')) {
    const details = body.querySelector('details');
    if (details && details.open) open.add(body.dataset.key);
  }
  for (const old of table.querySelectorAll('tbody')) old.remove();
  const list = data.instances || [];
  if (list.length === 0) table.append(emptyRow());
  for (const inst of list) {
    const body = row(inst, now);
    if (open.has(body.dataset.key)) body.querySelector('details').open = true;
    table.append(body);
  }
  omittedBox.replaceChildren(...omitted(data, list.length));
}

/** Uptimes and times ago move on between events. */
function tick() {
  const now = Date.now();
  for (const cell of table.querySelectorAll('[data-since]')) {
    const since = Date.parse(cell.dataset.since);
    if (!Number.isNaN(since)) cell.textContent = span(now - since);
  }
  for (const time of table.querySelectorAll('time[datetime]')) {
    const t = Date.parse(time.getAttribute('datetime'));
    if (!Number.isNaN(t)) time.textContent = ago(now - t);
  }
}

function setLive(on) {
  live.textContent = on ? 'Live' : 'Reconnecting…';
  live.className = on ? 'live-on' : 'live-off';
}

const source = new EventSource(`/api/events${window.location.search}`);
source.onopen = () => setLive(true);
source.onerror = () => setLive(false);
source.onmessage = (event) => {
  let envelope;
  try {
    envelope = JSON.parse(event.data);
  } catch {
    return;
  }
  if (envelope.status === 'success') render(envelope.data);
};
setInterval(tick, 1000);

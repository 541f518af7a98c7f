// Weir's dashboard: follows /api/events (one snapshot of every job a
// second) and draws the jobs list or one job's page. Plain DOM building,
// no framework and no build step: the binary serves this file as written.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
let latest = null;

// An element with attributes and children (text is always text, never HTML).
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  return fill(e, attrs, children);
}
function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  return fill(e, attrs, children);
}
function fill(e, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
const $ = (id) => document.getElementById(id);

function rate(x) {
  if (x === null || x === undefined) return '–';
  if (x >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (x >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  return x.toFixed(1);
}
function count(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
function pct(x) { return x === null || x === undefined ? '–' : Math.round(x * 100) + ' %'; }
function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0; let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
}
function time(ms) {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
function ago(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return ms + ' ms';
  if (ms < 120000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 7200000) return Math.round(ms / 60000) + ' min';
  if (ms < 172800000) return Math.round(ms / 3600000) + ' h';
  return Math.round(ms / 86400000) + ' days';
}
function short(text, n) { return text.length > n ? text.slice(0, n - 1) + '…' : text; }
function table(id, head, rows, empty) {
  const t = $(id);
  t.replaceChildren(
    h('thead', {}, h('tr', {}, head.map(([label, cls]) => h('th', { class: cls }, label)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: head.length, class: 'quiet' }, empty))));
}
const num = 'num';

// ---- routing -------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/jobs\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}
window.addEventListener('hashchange', render);

// ---- the jobs list -------------------------------------------------------

function renderJobs(jobs) {
  $('no-jobs').hidden = jobs.length > 0;
  $('jobs').querySelector('tbody').replaceChildren(...jobs.map((j) => h('tr', { 'data-job': j.id },
    h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(j.id) }, j.id)),
    h('td', {}, h('span', { class: 'status ' + j.status.toLowerCase() }, j.status)),
    h('td', { class: 'statement', title: j.statement }, short(j.statement, 70),
      j.diagnosis ? h('div', { class: 'diagnosis' }, j.diagnosis) : null),
    h('td', { class: 'num rows-in-per-s', 'data-value': j.rows_in_per_s }, rate(j.rows_in_per_s)),
    h('td', { class: 'num rows-out-per-s', 'data-value': j.rows_out_per_s }, rate(j.rows_out_per_s)),
    h('td', { class: num }, count(j.rows_in)),
    h('td', { class: num }, count(j.rows_out)),
    h('td', { class: num }, count(j.rows_dropped)),
    h('td', {}, time(j.watermark)),
    h('td', { class: num }, count(j.checkpoints_completed)),
    h('td', { class: num }, count(j.restarts)))));
}

// ---- one job -------------------------------------------------------------

const BOX_W = 300, LINE = 17, GAP_X = 120, GAP_Y = 24, PAD = 10;

function stageLines(st) {
  const lines = [];
  if (st.source) lines.push(['Source: ' + st.source, 'op']);
  for (const op of st.operators) lines.push([op.name, op.unbounded ? 'op unbounded' : 'op']);
  if (st.sink) lines.push(['Sink: ' + st.sink, 'op']);
  if (st.late_sink) lines.push(['Late data: ' + st.late_sink, 'op']);
  return lines;
}

function renderGraph(job) {
  const stages = job.stages;
  const depth = [];
  for (const st of stages) {
    depth[st.stage] = st.inputs.length ? 1 + Math.max(...st.inputs.map((e) => depth[e.from] ?? 0)) : 0;
  }
  const columns = [];
  const pos = {};
  for (const st of stages) {
    const c = depth[st.stage];
    columns[c] = columns[c] || [];
    const height = PAD * 2 + LINE * (stageLines(st).length + 4) + 8;
    const y = columns[c].reduce((sum, o) => sum + o.height + GAP_Y, 0);
    const box = { x: PAD + c * (BOX_W + GAP_X), y: PAD + y, height };
    columns[c].push(box);
    pos[st.stage] = box;
  }
  const width = PAD * 2 + columns.length * (BOX_W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(0, ...Object.values(pos).map((b) => b.y + b.height));
  // An ended job's figures are its last: drawn grey, not as health.
  const ended = !(job.status === 'RUNNING' || job.status === 'RESTARTING');
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'job graph', class: ended ? 'ended' : null },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))));
  for (const st of stages) {
    for (const e of st.inputs) {
      const a = pos[e.from], b = pos[st.stage];
      if (!a || !b) continue;
      const x1 = a.x + BOX_W, y1 = a.y + a.height / 2, x2 = b.x, y2 = b.y + b.height / 2;
      const mx = (x1 + x2) / 2;
      const label = e.partitioning === 'hash' ? `hash [${e.keys ?? ''}]` : e.partitioning;
      svg.append(s('g', { class: 'edge', 'data-from': e.from, 'data-to': st.stage },
        s('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }),
        s('text', { x: mx, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle', class: 'edge-label', 'data-partitioning': e.partitioning },
          short(label, 16), s('title', {}, label))));
    }
  }
  for (const st of stages) {
    const b = pos[st.stage];
    const g = s('g', { class: 'stage level-' + st.level, 'data-stage': st.stage, 'data-level': st.level, transform: `translate(${b.x},${b.y})` },
      s('rect', { width: BOX_W, height: b.height, rx: 6, class: 'box' }));
    let y = PAD + 13;
    g.append(s('text', { x: PAD, y, class: 'title' }, `Stage ${st.stage}`,
      s('tspan', { class: 'parallelism', dx: 8 }, `parallelism ${st.parallelism}`)));
    for (const [text, cls] of stageLines(st)) {
      y += LINE;
      g.append(s('text', { x: PAD, y, class: cls }, short(text, 42) + (cls.includes('unbounded') ? ' ⚠' : ''), s('title', {}, text)));
    }
    y += LINE + 4;
    g.append(s('text', { x: PAD, y, class: 'figures' }, 'in ',
      s('tspan', { class: 'rows-in-per-s', 'data-value': st.rows_in_per_s }, rate(st.rows_in_per_s)), '/s  ·  out ',
      s('tspan', { class: 'rows-out-per-s', 'data-value': st.rows_out_per_s }, rate(st.rows_out_per_s)), '/s'));
    y += LINE;
    g.append(s('text', { x: PAD, y, class: 'figures' },
      `busy ${pct(st.busy)} · backpressured `, s('tspan', { class: 'backpressured', 'data-value': st.backpressured }, pct(st.backpressured)),
      ` · queue ${st.queue_depth}/${st.queue_capacity}`));
    y += 8;
    const bw = BOX_W - 2 * PAD;
    let x = PAD;
    for (const [part, cls] of [[st.busy, 'busy'], [st.backpressured, 'bp'], [st.idle, 'idle']]) {
      const w = Math.max(0, Math.min(1, part ?? 0)) * bw;
      g.append(s('rect', { x, y, width: w, height: 6, class: 'bar ' + cls }));
      x += w;
    }
    g.append(s('rect', { x: PAD, y, width: bw, height: 6, class: 'bar-frame' }));
    svg.append(g);
  }
  $('graph').replaceChildren(svg);
}

function renderTasks(job) {
  const rows = [];
  for (const st of job.stages) {
    for (const t of st.subtasks) {
      rows.push(h('tr', { 'data-stage': st.stage, 'data-subtask': t.subtask },
        h('td', {}, st.stage), h('td', {}, t.subtask),
        h('td', { class: num }, rate(t.rows_in_per_s)), h('td', { class: num }, rate(t.rows_out_per_s)),
        h('td', { class: num }, count(t.rows_in)), h('td', { class: num }, count(t.rows_out)),
        h('td', { class: num }, pct(t.busy)), h('td', { class: num + (t.backpressured > 0.5 ? ' hot' : '') }, pct(t.backpressured)),
        h('td', { class: num }, pct(t.idle)), h('td', { class: num }, `${t.queue_depth}/${t.queue_capacity}`)));
    }
  }
  table('tasks', [['Stage'], ['Subtask'], ['In/s', num], ['Out/s', num], ['Rows in', num], ['Rows out', num],
    ['Busy', num], ['Backpressured', num], ['Idle', num], ['Queue', num]], rows, 'No tasks running.');
}

function renderCheckpointChart(cps) {
  const W = 460, H = 110, top = 14, bottom = 18;
  const box = $('checkpoint-chart');
  if (!cps.length) { box.replaceChildren(); return; }
  const maxD = Math.max(1, ...cps.map((c) => c.duration_ms));
  const maxB = Math.max(1, ...cps.map((c) => c.bytes));
  const bw = Math.max(2, Math.min(18, (W - 60) / cps.length - 2));
  const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'checkpoint durations and sizes' });
  const plot = H - top - bottom;
  const points = [];
  cps.forEach((c, i) => {
    const x = 40 + i * (bw + 2);
    const hgt = Math.max(1, (c.duration_ms / maxD) * plot);
    svg.append(s('rect', { x, y: top + plot - hgt, width: bw, height: hgt, class: 'cp ' + c.status.toLowerCase() },
      s('title', {}, `checkpoint ${c.id} ${c.status}: ${c.duration_ms} ms, ${bytes(c.bytes)}, alignment ${c.aligned_wait_ms ?? '–'} ms`)));
    points.push(`${x + bw / 2},${top + plot - (c.bytes / maxB) * plot}`);
  });
  svg.append(s('polyline', { points: points.join(' '), class: 'size-line' }));
  svg.append(s('text', { x: 0, y: top - 3, class: 'axis' }, `${maxD} ms`));
  svg.append(s('text', { x: W, y: top - 3, class: 'axis size', 'text-anchor': 'end' }, `size ≤ ${bytes(maxB)}`));
  svg.append(s('text', { x: 0, y: H - 4, class: 'axis' }, `last ${cps.length}: bars duration, line size`));
  box.replaceChildren(svg);
}

function sparkline(history) {
  const W = 140, H = 26;
  if (history.length < 2) return s('svg', { width: W, height: H });
  const t0 = history[0][0], t1 = history[history.length - 1][0];
  const max = Math.max(1, ...history.map((p) => p[1]));
  const pts = history.map(([t, b]) => `${((t - t0) / Math.max(1, t1 - t0)) * (W - 2) + 1},${H - 2 - (b / max) * (H - 4)}`);
  return s('svg', { width: W, height: H, class: 'spark' }, s('polyline', { points: pts.join(' ') }));
}

function renderJob(job) {
  $('job-id').textContent = job.id;
  const status = $('job-status');
  status.textContent = job.status;
  status.className = 'status ' + job.status.toLowerCase();
  $('job-statement').textContent = job.statement;
  $('job-diagnosis').hidden = !job.diagnosis;
  $('job-diagnosis').textContent = job.diagnosis ?? '';
  $('job-failure').hidden = !job.last_failure;
  $('job-failure').textContent = job.last_failure ? 'Last failure: ' + job.last_failure : '';
  const running = job.status === 'RUNNING' || job.status === 'RESTARTING';
  $('stop').disabled = !running;
  $('stop-savepoint').disabled = !running;
  renderGraph(job);
  renderTasks(job);
  table('watermarks', [['Table'], ['Subtask', num], ['Partition', num], ['Watermark'], ['Latest event'], ['Lag', num], ['Idle']],
    job.watermarks.map((w) => h('tr', {}, h('td', {}, w.table), h('td', { class: num }, w.subtask), h('td', { class: num }, w.partition),
      h('td', {}, time(w.watermark)), h('td', {}, time(w.max_event_time)), h('td', { class: num }, ago(w.lag_ms)), h('td', {}, w.idle ? 'idle' : ''))),
    'No source partitions with event time.');
  table('pending', [['Operator'], ['Subtask', num], ['Key groups', num], ['Oldest open window'], ['Diagnosis']],
    job.pending.map((p) => h('tr', {}, h('td', { title: p.operator }, short(p.operator, 30)), h('td', { class: num }, p.subtask),
      h('td', { class: num }, p.key_groups), h('td', {}, `${time(p.window_start)} – ${time(p.window_end).slice(11)}`), h('td', { class: 'diagnosis' }, p.diagnosis))),
    'No window waits.');
  renderCheckpointChart(job.checkpoints);
  table('checkpoints', [['Id', num], ['Status'], ['Duration', num], ['Size', num], ['Alignment', num]],
    job.checkpoints.slice(-5).reverse().map((c) => h('tr', {}, h('td', { class: num }, c.id), h('td', {}, c.status),
      h('td', { class: num }, c.duration_ms + ' ms'), h('td', { class: num }, bytes(c.bytes)),
      h('td', { class: num }, c.aligned_wait_ms === null ? '–' : c.aligned_wait_ms.toFixed(1) + ' ms'))),
    'No checkpoints.');
  table('state', [['Operator'], ['Size', num], ['Keys', num], ['Last 5 min']],
    job.state.map((m) => h('tr', { class: m.unbounded ? 'unbounded' : '' },
      h('td', {}, m.operator, m.unbounded ? h('span', { class: 'badge', title: 'EXPLAIN: nothing frees this state' }, 'unbounded') : null),
      h('td', { class: num }, bytes(m.bytes)), h('td', { class: num }, count(m.keys)), h('td', {}, sparkline(m.history)))),
    'No state.');
  table('dropped', [['Operator'], ['Reason'], ['Rows', num]],
    job.dropped.map((d) => h('tr', {}, h('td', { title: d.operator }, short(d.operator, 40)), h('td', {}, d.reason.replaceAll('_', ' ')), h('td', { class: num }, count(d.rows)))),
    'Nothing dropped.');
  table('hot-keys', [['Stage', num], ['Keyed by'], ['Rank', num], ['Key'], ['Rows', num], ['Share', num], ['Skew', num]],
    job.hot_keys.map((k) => h('tr', {}, h('td', { class: num }, k.stage), h('td', {}, k.keyed_by), h('td', { class: num }, k.rank),
      h('td', {}, short(k.key, 30)), h('td', { class: num }, count(k.rows)), h('td', { class: num }, pct(k.share)), h('td', { class: num }, k.skew_ratio.toFixed(1) + '×'))),
    'No keyed stage.');
  table('kafka-lag', [['Table'], ['Topic'], ['Partition', num], ['Lag', num], ['Read lag', num]],
    job.kafka_lag.map((k) => h('tr', {}, h('td', {}, k.table), h('td', {}, k.topic), h('td', { class: num }, k.partition),
      h('td', { class: num }, count(k.lag)), h('td', { class: num }, count(k.read_lag)))),
    'No Kafka source.');
  if ($('explain').textContent !== job.explain) $('explain').textContent = job.explain;
}

function render() {
  const id = route();
  $('jobs-view').hidden = id !== null;
  $('job-view').hidden = id === null;
  if (!latest) return;
  const at = $('updated');
  at.dataset.at = latest.at_ms;
  at.textContent = 'updated ' + time(latest.at_ms).slice(11, 19) + ' UTC';
  if (id === null) { renderJobs(latest.jobs); return; }
  const job = latest.jobs.find((j) => j.id === id);
  if (job) renderJob(job); else $('job-id').textContent = id + ' (not found)';
}

// ---- live updates --------------------------------------------------------

function follow() {
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (e) => { latest = JSON.parse(e.data); render(); });
  events.addEventListener('error', () => {
    const at = $('updated');
    at.textContent = 'disconnected: retrying…';
    at.classList.add('stale');
  });
  events.addEventListener('open', () => $('updated').classList.remove('stale'));
}

// ---- actions -------------------------------------------------------------

function say(text, isError) {
  const m = $('message');
  m.hidden = false;
  m.className = isError ? 'error' : 'ok';
  m.textContent = text;
}

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  try { return [r.status, JSON.parse(text)]; } catch { return [r.status, { error: text.trim() || r.statusText }]; }
}

async function stop(savepoint) {
  const id = route();
  if (id === null) return;
  const what = savepoint ? `Take a savepoint of job ${id} and stop it?` : `Stop job ${id}?`;
  if (!window.confirm(what)) return;
  $('stop').disabled = $('stop-savepoint').disabled = true;
  const [status, answer] = await post('/api/jobs/' + encodeURIComponent(id) + '/stop', { savepoint });
  if (status === 200) say(answer.message, false); else say(answer.error, true);
}

function renderAnswers(answer) {
  const out = [];
  for (const r of answer.results || []) {
    if (r.kind === 'table') {
      out.push(h('table', { class: 'result' },
        h('thead', {}, h('tr', {}, r.columns.map((c) => h('th', {}, c)))),
        h('tbody', {}, r.rows.map((row) => h('tr', {}, row.map((c) => h('td', {}, c)))))));
      out.push(h('p', { class: 'quiet' }, `${r.rows.length} row${r.rows.length === 1 ? '' : 's'}` + (r.truncated ? ' (truncated: --max-result-rows)' : '')));
    } else if (r.kind === 'explain') {
      out.push(h('pre', {}, r.text));
    } else {
      out.push(h('p', { class: 'ok' }, r.message));
    }
  }
  if (answer.error) {
    out.push(h('p', { class: 'error', id: 'sql-error' }, answer.error));
    if (answer.hint) out.push(h('p', { class: 'hint' }, 'Hint: ' + answer.hint));
  }
  $('sql-result').replaceChildren(...out);
}

async function runSql() {
  const button = $('sql-run');
  button.disabled = true;
  $('sql-result').replaceChildren(h('p', { class: 'quiet' }, 'running…'));
  try {
    const [, answer] = await post('/api/sql', { sql: $('sql-text').value });
    renderAnswers(answer);
  } catch (e) {
    renderAnswers({ error: String(e) });
  } finally {
    button.disabled = false;
  }
}

$('stop').addEventListener('click', () => stop(false));
$('stop-savepoint').addEventListener('click', () => stop(true));
$('sql-run').addEventListener('click', runSql);
$('sql-text').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSql(); });
render();
follow();

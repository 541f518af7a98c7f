// The dashboard of a running `weir serve` in headless chromium: the jobs
// list, a job's graph and its live rows/s, a backpressured stage, the SQL
// box, and stopping jobs with and without a savepoint. Prints one JSON
// line of what the page showed; tests/dashboard.rs checks it against
// psql's independent reads. Usage: node tour.js BASE_URL SHOT_DIR IDS_JSON
'use strict';
const path = require('path');
const { launch } = require('./browser');

const [base, shots, idsJson] = process.argv.slice(2);
const ids = JSON.parse(idsJson);
const out = {};

async function main() {
  const { page, close } = await launch();
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  const at = () => page.getAttribute('#updated', 'data-at');
  const nextTick = async () => {
    const now = await at();
    await page.waitForFunction((a) => document.getElementById('updated').dataset.at !== a, now, { timeout: 10000 });
  };
  try {
    // The jobs page lists every job.
    const response = await page.goto(base + '/');
    out.status = response.status();
    await page.waitForFunction((n) => document.querySelectorAll('#jobs tbody tr[data-job]').length >= n,
      Object.keys(ids).length, { timeout: 15000 });
    await nextTick();
    out.listed = await page.$$eval('#jobs tbody tr[data-job]', (rows) => rows.map((r) => r.dataset.job));
    await shot('jobs');

    // The healthy job's graph, and its rows/s read twice, ticks apart.
    await page.goto(base + '/#/jobs/' + encodeURIComponent(ids.healthy));
    await page.waitForSelector('#graph svg g.stage[data-stage="1"]', { timeout: 10000 });
    out.stages = await page.$$eval('#graph g.stage', (gs) => gs.map((g) => ({
      stage: g.dataset.stage,
      parallelism: g.querySelector('.parallelism').textContent,
      // The lines as drawn (each line's <title> holds its full text).
      text: [...g.querySelectorAll('text')].map((t) => t.firstChild.textContent).join('\n'),
    })));
    out.edges = await page.$$eval('#graph .edge-label', (ls) => ls.map((l) => l.firstChild.textContent));
    const read = async () => ({
      at: await at(),
      rate: await page.getAttribute('#graph g.stage[data-stage="0"] .rows-out-per-s', 'data-value'),
      shown: await page.textContent('#graph g.stage[data-stage="0"] .rows-out-per-s'),
    });
    await page.waitForFunction(() => {
      const v = document.querySelector('#graph g.stage[data-stage="0"] .rows-out-per-s');
      return v && v.dataset.value && Number(v.dataset.value) > 0;
    }, null, { timeout: 15000 });
    out.first = await read();
    await nextTick();
    await nextTick();
    out.second = await read();
    // Checkpoints complete and are charted.
    await page.waitForSelector('#checkpoint-chart svg rect.cp.completed', { timeout: 15000 });
    await shot('healthy-job');

    // The backpressured job: its sources' stage turns "high".
    await page.goto(base + '/#/jobs/' + encodeURIComponent(ids.backpressured));
    await page.waitForSelector('#graph g.stage[data-stage="0"]', { timeout: 10000 });
    const t0 = Date.now();
    await page.waitForSelector('#graph g.stage[data-stage="0"][data-level="high"]', { timeout: 45000 });
    out.backpressureAfterMs = Date.now() - t0;
    out.levels = await page.$$eval('#graph g.stage', (gs) => gs.map((g) => [g.dataset.stage, g.dataset.level]));
    out.backpressuredShown = await page.textContent('#graph g.stage[data-stage="0"] .backpressured');
    await shot('backpressured-job');

    // The SQL box.
    await page.goto(base + '/#/');
    await page.fill('#sql-text', 'SELECT job_id, statement FROM weir.jobs ORDER BY job_id');
    await page.click('#sql-run');
    await page.waitForSelector('#sql-result table.result', { timeout: 15000 });
    out.sqlColumns = await page.$$eval('#sql-result table.result th', (ths) => ths.map((t) => t.textContent));
    out.sqlRows = await page.$$eval('#sql-result table.result tbody tr',
      (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    await page.locator('#sql').screenshot({ path: path.join(shots, 'sql-box.png') });
    await page.fill('#sql-text', 'SELECT * FROM ev');
    await page.click('#sql-run');
    await page.waitForSelector('#sql-error', { timeout: 15000 });
    out.streamingError = await page.textContent('#sql-result');

    // Stop the small job, then the healthy one with a savepoint.
    for (const [key, button] of [['small', '#stop'], ['healthy', '#stop-savepoint']]) {
      await page.goto(base + '/#/jobs/' + encodeURIComponent(ids[key]));
      await page.waitForSelector('#job-status:text("RUNNING")', { timeout: 10000 });
      await page.evaluate(() => { document.getElementById('message').hidden = true; });
      await page.click(button);
      await page.waitForSelector('#message:not([hidden])', { timeout: 60000 });
      out[key + 'Stop'] = { message: await page.textContent('#message'), ok: await page.$('#message.ok') !== null };
      await page.waitForFunction(() => document.getElementById('job-status').textContent !== 'RUNNING', null, { timeout: 20000 });
      out[key + 'Status'] = await page.textContent('#job-status');
    }
    await shot('stopped-with-savepoint');
  } catch (e) {
    out.failure = String(e && e.stack || e);
    await shot('failure').catch(() => {});
  } finally {
    await close();
  }
  console.log(JSON.stringify(out));
}

main();

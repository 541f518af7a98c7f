// A `weir serve --password` dashboard in headless chromium: the right
// credentials show the page, wrong ones are refused (401), and requests
// without them, or that change something without being the page's own
// JSON, are refused too. Prints one JSON line.
// Usage: node auth.js BASE_URL SHOT_DIR USER PASSWORD
'use strict';
const path = require('path');
const { launch } = require('./browser');

const [base, shots, user, password] = process.argv.slice(2);
const out = {};
const basic = (u, p) => 'Basic ' + Buffer.from(u + ':' + p).toString('base64');

async function status(url, init) {
  const controller = new AbortController();
  const r = await fetch(url, { ...init, signal: controller.signal });
  controller.abort();
  return r.status;
}

async function main() {
  try {
    let browser = await launch({ httpCredentials: { username: user, password } });
    try {
      const r = await browser.page.goto(base + '/');
      out.right = r.status();
      await browser.page.waitForFunction(() => document.getElementById('updated').dataset.at !== '', null, { timeout: 10000 });
      out.rightText = await browser.page.textContent('#updated');
      await browser.page.screenshot({ path: path.join(shots, 'with-password.png') });
    } finally {
      await browser.close();
    }
    browser = await launch({ httpCredentials: { username: user, password: password + 'x' } });
    try {
      const r = await browser.page.goto(base + '/');
      out.wrong = r.status();
      out.wrongText = (await browser.page.textContent('body')).trim();
      await browser.page.screenshot({ path: path.join(shots, 'wrong-password.png') });
    } finally {
      await browser.close();
    }
    const wrong = { Authorization: basic(user, 'not-' + password) };
    const right = { Authorization: basic(user, password) };
    const json = { 'Content-Type': 'application/json' };
    const sql = JSON.stringify({ sql: 'SELECT 1' });
    out.fetch = {
      none: await status(base + '/api/jobs'),
      wrongJobs: await status(base + '/api/jobs', { headers: wrong }),
      wrongEvents: await status(base + '/api/events', { headers: wrong }),
      wrongSql: await status(base + '/api/sql', { method: 'POST', headers: { ...wrong, ...json }, body: sql }),
      rightJobs: await status(base + '/api/jobs', { headers: right }),
      rightEvents: await status(base + '/api/events', { headers: right }),
      rightSql: await status(base + '/api/sql', { method: 'POST', headers: { ...right, ...json }, body: sql }),
      plainText: await status(base + '/api/sql', { method: 'POST', headers: { ...right, 'Content-Type': 'text/plain' }, body: sql }),
      foreignOrigin: await status(base + '/api/sql',
        { method: 'POST', headers: { ...right, ...json, Origin: 'http://attacker.example' }, body: sql }),
    };
  } catch (e) {
    out.failure = String(e && e.stack || e);
  }
  console.log(JSON.stringify(out));
}

main();

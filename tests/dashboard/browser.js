// Starts Debian's chromium headless through playwright-core, on a profile
// directory of its own made for this run (Playwright passes it as
// --user-data-dir), and removes that directory when closed.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

async function launch(options = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.WEIR_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
    ...options,
  });
  const page = context.pages()[0] ?? await context.newPage();
  // Stop buttons ask first: the test says yes.
  page.on('dialog', (d) => d.accept());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { launch };

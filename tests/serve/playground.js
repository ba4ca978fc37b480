'use strict';
// Drives the playground page (miniworker serve --playground) in headless
// Chromium with playwright-core: a run of examples/hello's app.js, then a
// worker session that posts a message and terminates. Prints the page's
// log lines, as JSON, for tests/serve/playground.rs to check.
//   node playground.js URL TOKEN
const { chromium } = require('playwright-core');

(async () => {
  const [url, token] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // As root Chromium needs --no-sandbox; the rest keeps it off the network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
    await page.fill('#token', token);
    const logHas = (text) => page.waitForFunction(
      (t) => document.getElementById('log').textContent.includes(t), text, { timeout: 20000 });
    const closes = () => page.evaluate(() => document.getElementById('log').textContent.split('(closed').length - 1);

    await page.check('#mode-run');
    await page.click('#open');
    await logHas('"reason":"quiescent"');
    await page.waitForFunction(() => !document.getElementById('open').disabled, null, { timeout: 20000 });

    await page.check('#mode-worker');
    await page.click('#open');
    await logHas('"type":"opened"');
    await page.fill('#message', '{"msg": "from the browser"}');
    await page.click('#post');
    await logHas('"echo":"from the browser"');
    await page.click('#terminate');
    await logHas('"reason":"terminated"');
    await page.waitForFunction((n) => document.getElementById('log').textContent.split('(closed').length - 1 > n,
      await closes() - 1, { timeout: 20000 });
    const lines = await page.$$eval('#log div', (divs) => divs.map((d) => d.textContent));
    console.log(JSON.stringify(lines));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });

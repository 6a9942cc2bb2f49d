// The console's first load, in Debian's Chromium (headless, through playwright-core), on loopback:
// run by kith-bench's `console` benchmark (bench/src/console.rs), which prints the figures.
//
// Each run opens a new browser context (empty cache, the session cookie of one sign-in), loads
// `/` and waits until the overview's KPIs show: the first screen is interactive. The baseline,
// measured the same way in the same run, is the same browser loading `/healthz` of the same
// kernel: the floor of one page load here. The page weight is what the first screen transferred,
// per kind, as the browser's resource timing reports it (gzipped bytes on the wire).
//
// Environment: KITH_URL, KITH_LOGIN, KITH_PASSWORD, RUNS (default 5), CHROMIUM (default /usr/bin/chromium).
// Prints one JSON object: {console_ms: [...], floor_ms: [...], first_screen: {js, css, html, other, requests}}.
import { chromium } from 'playwright-core';

const url = process.env.KITH_URL.replace(/\/$/, '');
const runs = Number(process.env.RUNS || 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // One sign-in; every run starts from its cookie, as a returning user does.
  const signIn = await browser.newContext();
  const res = await signIn.request.post(`${url}/v1/console/sign-in`, { data: { login: process.env.KITH_LOGIN, password: process.env.KITH_PASSWORD } });
  if (!res.ok()) throw new Error(`sign-in: ${res.status()} ${await res.text()}`);
  const state = await signIn.storageState();
  await signIn.close();

  const consoleMs = [];
  const floorMs = [];
  let weight = null;
  for (let i = 0; i < runs; i++) {
    {
      const context = await browser.newContext({ storageState: state });
      const page = await context.newPage();
      await page.goto(`${url}/healthz`, { waitUntil: 'load' });
      floorMs.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd));
      await context.close();
    }
    const context = await browser.newContext({ storageState: state });
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await page.locator('[data-testid="kpi-gmv"] .stat-value').filter({ hasText: /\d/ }).waitFor({ timeout: 30000 });
    consoleMs.push(await page.evaluate(() => performance.now()));
    if (weight === null) {
      weight = await page.evaluate(() => {
        const w = { js: 0, css: 0, html: 0, other: 0, requests: 0 };
        const nav = performance.getEntriesByType('navigation')[0];
        w.html += nav.transferSize || nav.encodedBodySize;
        w.requests += 1;
        for (const r of performance.getEntriesByType('resource')) {
          const bytes = r.encodedBodySize;
          w.requests += 1;
          if (r.name.endsWith('.js')) w.js += bytes;
          else if (r.name.endsWith('.css')) w.css += bytes;
          else w.other += bytes;
        }
        return w;
      });
    }
    await context.close();
  }
  console.log(JSON.stringify({ console_ms: consoleMs, floor_ms: floorMs, first_screen: weight }));
} finally {
  await browser.close();
}

// The browser tests' harness: Debian's Chromium, headless, driven by playwright-core, against a
// running kernel serving the console (or `npm run dev`'s Vite server in development).
//
// Environment:
//   KITH_URL          the console's origin (required), e.g. http://127.0.0.1:7700
//   KITH_LOGIN        a console owner's account and password; unset: no sign-in (the dev proxy's key)
//   KITH_PASSWORD
//   KITH_KEY          an owner API key of the same shop, for cross-checks against the API
//   KITH_SCREENSHOTS  folder for one screenshot per screen (default ../target/console-screenshots)
//   CHROMIUM          the browser (default: chromium on PATH, /usr/bin/chromium)
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const URL_BASE = (process.env.KITH_URL || '').replace(/\/$/, '');
export const LOGIN = process.env.KITH_LOGIN || null;
export const PASSWORD = process.env.KITH_PASSWORD || null;
export const KEY = process.env.KITH_KEY || null;
/**
 * How long a step may wait for the page: generous, because CI runs these beside the other e2e
 * suites on two cores against a debug kith (a screen that loads many figures took over 15 s there).
 */
export const STEP_TIMEOUT = 60000;
export const SHOTS = process.env.KITH_SCREENSHOTS || join(here, '../../target/console-screenshots');

function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  throw new Error('no Chromium: install Debian\'s `chromium` or set CHROMIUM');
}

let browser = null;
export const ctx = { browser: null };

before(async () => {
  assert.ok(URL_BASE, 'set KITH_URL to the console\'s origin');
  mkdirSync(SHOTS, { recursive: true });
  const index = await fetch(`${URL_BASE}/`).then((r) => r.text());
  assert.ok(index.includes('id="app"'), `${URL_BASE}/ is not the console (was this kith built without it? \`cargo xtask console\`, then build again):\n${index.slice(0, 300)}`);
  // No background networking, component updates, sync or QUIC: this machine's network is closed,
  // and Chromium's own connections would only be refused.
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  ctx.browser = browser;
});

after(async () => {
  if (browser) await browser.close();
});

/**
 * A fresh browser context (its own cookies), signed in as `login`/`password` (default: the
 * owner from the environment), on the overview. Answers the page; close its context when done.
 */
export async function signedIn(login = LOGIN, password = PASSWORD, { locale = 'en' } = {}) {
  const context = await browser.newContext({ locale, viewport: { width: 1366, height: 900 } });
  // The language switch's choice, as if the user had made it.
  await context.addInitScript((l) => localStorage.setItem('kith.locale', l), locale);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  const problems = [];
  page.on('pageerror', (err) => problems.push(err));
  page.problems = problems;
  await page.goto(`${URL_BASE}/`);
  if (login) {
    await page.getByLabel(locale === 'en' ? 'Account' : '账号').fill(login);
    await page.getByLabel(locale === 'en' ? 'Password' : '密码').fill(password);
    await page.getByRole('button', { name: locale === 'en' ? 'Sign in' : '登录' }).click();
  }
  await page.getByRole('navigation').waitFor();
  return page;
}

/** Open a screen by its hash path, e.g. `/customers/42`. */
export async function open(page, path) {
  await page.goto(`${URL_BASE}/#${path}`);
  await page.getByRole('navigation').waitFor();
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page as it stands: no violation of WCAG 2 A/AA rules (labels, names, contrast, roles). */
export async function accessible(page, { exclude = [] } = {}) {
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Through the DevTools protocol, which the page's content security policy (scripts of its own
  // origin only) does not govern: an inline <script> would be refused.
  await page.evaluate(source);
  const result = await page.evaluate(async (exclude) => {
    // eslint-disable-next-line no-undef
    const options = { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } };
    return exclude.length ? axe.run({ exclude }, options) : axe.run(document, options);
  }, exclude);
  const violations = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`);
  assert.deepEqual(violations, [], `accessibility violations:\n  ${violations.join('\n  ')}`);
}

/** A call on the public API with the owner key, to compare the console with. */
export async function api(method, path, body) {
  assert.ok(KEY, 'set KITH_KEY to an owner key of the shop');
  const res = await fetch(`${URL_BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/** No uncaught script error on the page so far. */
export function noScriptErrors(page) {
  assert.deepEqual(page.problems.map(String), []);
}

/**
 * A sub-account of `role` invited by the owner (through the API) and signed in by accepting the
 * invitation in the browser, as a new colleague does; `done()` closes its browser context and
 * removes the user. With KITH_ANALYST_LOGIN/KITH_ANALYST_PASSWORD (role analyst) that user signs in
 * instead. Skips the test (answers null) on a kernel without console users (`npm run dev` against
 * an old kernel).
 */
export async function subAccount(t, tag, role = 'analyst') {
  if (role === 'analyst' && process.env.KITH_ANALYST_LOGIN) {
    const page = await signedIn(process.env.KITH_ANALYST_LOGIN, process.env.KITH_ANALYST_PASSWORD);
    return { page, done: () => page.context().close() };
  }
  const invited = await api('POST', '/v1/console/users', { login: `${role}-${tag}-${Date.now()}`, name: `${tag} ${role}`, role });
  if (invited.status === 404) {
    t.skip('no console users on this kernel (set KITH_ANALYST_LOGIN and KITH_ANALYST_PASSWORD)');
    return null;
  }
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  const context = await browser.newContext({ locale: 'en', viewport: { width: 1366, height: 900 } });
  await context.addInitScript(() => localStorage.setItem('kith.locale', 'en'));
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(err));
  await page.goto(`${URL_BASE}/#/invite?token=${encodeURIComponent(invited.body.invite_token)}`);
  await page.getByLabel('Choose a password (at least 10 characters)').fill(`${role}-pw-${Date.now()}`);
  await page.getByRole('button', { name: 'Accept the invitation' }).click();
  await page.getByRole('navigation').waitFor();
  return {
    page,
    user: invited.body.user,
    done: async () => {
      await context.close();
      await api('DELETE', `/v1/console/users/${invited.body.user.id}`);
    },
  };
}

/** An analyst sub-account's page (see subAccount). */
export function analystPage(t, tag) {
  return subAccount(t, tag, 'analyst');
}

// Signing in and out: a wrong password, the lock-out after five, the sign-out that really ends the
// session, a sub-account changing their password, and the language following the shop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOGIN, PASSWORD, STEP_TIMEOUT, URL_BASE, accessible, api, ctx, noScriptErrors, screenshot, signedIn } from '../harness.mjs';

/** A new browser context on the sign-in page, as a first visit (no language chosen). */
async function visit(locale = 'en-US') {
  const context = await ctx.browser.newContext({ locale, viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(err));
  await page.goto(`${URL_BASE}/`);
  return page;
}

/** A console user of `role` made active through the API (invited, then the invitation accepted). */
async function activeUser(t, tag, role = 'operator') {
  const login = `${tag}-${Date.now()}`;
  const invited = await api('POST', '/v1/console/users', { login, role });
  if (invited.status === 404) {
    t.skip('no console users on this kernel');
    return null;
  }
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  const password = `pw-${tag}-${Date.now()}`;
  const res = await fetch(`${URL_BASE}/v1/console/invites/accept`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: invited.body.invite_token, password }),
  });
  assert.equal(res.status, 200, await res.text());
  return { login, password, id: invited.body.user.id, remove: () => api('DELETE', `/v1/console/users/${invited.body.user.id}`) };
}

async function signIn(page, login, password) {
  await page.getByLabel('Account').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('sign-in: a wrong password is refused in words, and the page passes axe', { skip: !LOGIN && 'no console sign-in (KITH_LOGIN unset)' }, async () => {
  const page = await visit();
  try {
    await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
    await accessible(page);
    await signIn(page, LOGIN, `${PASSWORD}-wrong`);
    await page.getByTestId('sign-in-error').getByText('The account or the password is wrong.').waitFor();
    await screenshot(page, 'sign-in');
    // The right password then signs in, on the overview.
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation').waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('sign-in: five failures lock the account, in words, with the wait', { skip: !LOGIN && 'no console sign-in (KITH_LOGIN unset)' }, async (t) => {
  const user = await activeUser(t, 'lockme');
  if (!user) return;
  const page = await visit();
  try {
    for (let i = 0; i < 4; i++) {
      await signIn(page, user.login, `not-the-password-${i}`);
      await page.getByTestId('sign-in-error').getByText('The account or the password is wrong.').waitFor();
    }
    await signIn(page, user.login, 'not-the-password-4');
    await page.getByTestId('sign-in-error').getByText(/Too many failed attempts: try again in \d+ min\./).waitFor();
    // Locked: even the right password waits.
    await signIn(page, user.login, user.password);
    await page.getByTestId('sign-in-error').getByText(/Too many failed attempts/).waitFor();
    const audit = await api('GET', '/v1/audit?limit=50');
    assert.ok(audit.body.items.some((e) => e.action === 'console.user.locked'), JSON.stringify(audit.body.items.slice(0, 5)));
    noScriptErrors(page);
  } finally {
    await page.context().close();
    await user.remove();
  }
});

test('sign-out ends the session on the kernel, not only in the page', async (t) => {
  if (!LOGIN) return t.skip('no console sign-in (KITH_LOGIN unset)');
  const page = await signedIn();
  try {
    assert.equal((await page.request.get(`${URL_BASE}/v1/console/session`)).status(), 200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
    assert.equal((await page.request.get(`${URL_BASE}/v1/console/session`)).status(), 401, 'the cookie no longer signs in');
    // A reload stays signed out.
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('a sub-account changes their password: the old one stops working, the new one signs in', async (t) => {
  if (!LOGIN) return t.skip('no console sign-in (KITH_LOGIN unset)');
  const user = await activeUser(t, 'newpw');
  if (!user) return;
  const page = await signedIn(user.login, user.password);
  try {
    await page.getByTestId('who').getByText(/operator/).waitFor();
    await page.getByRole('button', { name: 'Change password' }).click();
    const dialog = page.getByRole('dialog', { name: 'Change password' });
    await dialog.getByLabel('Current password').fill('wrong-current-password');
    await dialog.getByLabel(/Choose a password/).fill('a-new-password-1');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.locator('.field.has-error').first().waitFor();
    await dialog.getByLabel('Current password').fill(user.password);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByRole('status').getByText(/Your password was changed/).waitFor();
    await accessible(page);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
    await signIn(page, user.login, user.password);
    await page.getByTestId('sign-in-error').getByText('The account or the password is wrong.').waitFor();
    await page.getByLabel('Password').fill('a-new-password-1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation').waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
    await user.remove();
  }
});

test('the console speaks the shop’s language until the user picks another', async (t) => {
  if (!LOGIN) return t.skip('no console sign-in (KITH_LOGIN unset)');
  const shop = (await api('GET', '/v1/shop')).body;
  const page = await visit('en-US');
  try {
    // Before signing in, the shop is unknown: the browser's language.
    await signIn(page, LOGIN, PASSWORD);
    await page.getByRole('navigation').waitFor();
    const chinese = ['CN', 'HK', 'TW'].includes(shop.region);
    await page.getByRole('navigation').getByRole('link', { name: chinese ? '概览' : 'Overview' }).waitFor();
    // The switch wins, and is kept.
    await page.getByRole('combobox', { name: chinese ? '语言' : 'Language' }).selectOption(chinese ? 'en' : 'zh-CN');
    await page.getByRole('navigation').getByRole('link', { name: chinese ? 'Overview' : '概览' }).waitFor();
    await page.reload();
    await page.getByRole('navigation').getByRole('link', { name: chinese ? 'Overview' : '概览' }).waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

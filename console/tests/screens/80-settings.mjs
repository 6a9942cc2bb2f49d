// Settings: the shop; an API key created with its token shown once, listed, in the audit log,
// then revoked; sub-accounts invited and removed (404 tolerated only in development, without
// sign-in); the export policy; CSV import of a file with a bad row: progress to 100 %, the
// rejected row offered as CSV, and a second import applying nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LOGIN, accessible, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

const stamp = Date.now().toString(36);

test('settings: the shop, then an API key created, its token shown once, in the audit log, revoked', async () => {
  const shop = (await api('GET', '/v1/shop')).body;
  const page = await signedIn();
  try {
    await open(page, '/settings');
    await page.getByTestId('settings-shop-name').getByText(shop.name, { exact: true }).waitFor();
    await page.getByText(shop.time_zone, { exact: true }).waitFor();

    await page.getByRole('tab', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'Create an API key' }).waitFor();
    // No name: refused on the field.
    await page.getByRole('button', { name: 'Create key' }).click();
    const refused = page.locator('.field.has-error').getByRole('alert');
    await refused.waitFor();
    // The API's message, without the field's name before it.
    assert.doesNotMatch(await refused.textContent(), /^name: /);

    const name = `console test ${stamp}`;
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Role', { exact: true }).selectOption('analyst');
    await page.getByRole('button', { name: 'Create key' }).click();
    const token = page.getByLabel('Token', { exact: true });
    await token.waitFor();
    const value = await token.inputValue();
    assert.match(value, /^kith_[0-9a-f]{12}_[0-9a-f]+$/);
    const row = page.getByRole('row').filter({ hasText: name });
    await row.waitFor();
    const keyId = value.split('_')[1];
    await row.getByText(keyId, { exact: true }).waitFor();
    // The token works. (Only against the kernel itself: in development the Vite proxy signs
    // every request with its own key.)
    const byToken = () => fetch(`${process.env.KITH_URL.replace(/\/$/, '')}/v1/shop`, { headers: { authorization: `Bearer ${value}` } });
    if (LOGIN) assert.equal((await byToken()).status, 200);
    const listed = (await api('GET', '/v1/keys')).body.items.find((k) => k.id === keyId);
    assert.equal(listed.name, name);
    assert.equal(listed.role, 'analyst');
    await screenshot(page, 'settings');
    await accessible(page);

    // Shown once: gone when dismissed, and not on the page again after a reload.
    await page.getByRole('button', { name: 'Done' }).click();
    await token.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByRole('row').filter({ hasText: name }).waitFor();
    assert.equal(await page.getByText(value).count(), 0);

    // The audit log lists its creation.
    await page.getByRole('tab', { name: 'Audit log' }).click();
    await page.getByText('The filters search only the entries loaded so far').waitFor();
    await page.getByRole('button', { name: 'Refresh the audit log' }).waitFor();
    await page.getByLabel('Action contains').fill('key');
    await page.getByRole('row').filter({ hasText: keyId }).first().waitFor();
    await accessible(page);

    // Revoked after a confirmation.
    await page.getByRole('tab', { name: 'API keys' }).click();
    await page.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('row').filter({ hasText: name }).getByText(/Revoked/).waitFor();
    assert.ok((await api('GET', '/v1/keys')).body.items.find((k) => k.id === keyId).revoked_at, 'the API has the key revoked');
    if (LOGIN) assert.equal((await byToken()).status, 401);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('settings: sub-accounts are invited with a link to copy, then removed', async () => {
  const page = await signedIn();
  try {
    await open(page, '/settings?tab=users');
    await page.getByRole('heading', { name: 'Console users' }).waitFor();
    const list = await api('GET', '/v1/console/users');
    if (list.status === 404 && !LOGIN) {
      // Development against a kernel without console users: the error state.
      await page.getByRole('alert').waitFor();
      noScriptErrors(page);
      return;
    }
    const login = `sub-${stamp}`;
    await page.getByLabel('Account', { exact: true }).fill(login);
    await page.getByLabel('Name', { exact: true }).fill('Console Test');
    await page.getByLabel('Role', { exact: true }).selectOption('analyst');
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    const link = page.getByTestId('invite-link');
    await link.waitFor();
    assert.match(await link.inputValue(), /\/#\/invite\?token=./);
    const row = page.getByRole('row').filter({ hasText: login });
    await row.getByText('Invited', { exact: true }).waitFor();
    await accessible(page);
    await page.getByRole('button', { name: `Remove ${login}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('settings: the export policy is read and saved', async () => {
  const before = (await api('GET', '/v1/shop/settings/export')).body;
  const page = await signedIn();
  try {
    await open(page, '/settings?tab=export');
    const box = page.getByLabel(/Personal columns/);
    await box.waitFor();
    assert.equal(await box.isChecked(), before.personal_columns);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    assert.deepEqual((await api('GET', '/v1/shop/settings/export')).body, before);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('settings: CSV import shows progress to 100 % and offers the rejected row; again, nothing applies twice', async () => {
  const n = Number.parseInt(stamp.slice(-6), 36) % 100000;
  const phone = (i) => `1390${String(n).padStart(5, '0')}${i}${i}`;
  // A BOM, CRLF, a quoted field with a comma and a doubled quote, and a bad birthday.
  const csv = [
    '\ufeff手机号,邮箱,姓名,生日,城市',
    `${phone(1)},import-${stamp}-1@example.com,"Zhang, ""Wei""",1990-05-20,杭州`,
    `${phone(2)},import-${stamp}-2@example.com,Li Na,spring,上海`,
    `${phone(3)},import-${stamp}-3@example.com,王芳,1988/1/2,北京`,
  ].join('\r\n');
  const page = await signedIn();
  try {
    await open(page, '/settings?tab=import');
    const upload = async () => {
      await page.getByLabel('CSV file (UTF-8 or GBK)').setInputFiles({ name: `import-${stamp}.csv`, mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') });
      await page.getByRole('button', { name: 'Import 3 rows' }).click();
      await page.getByTestId('import-summary').waitFor();
    };
    await upload();
    await page.getByTestId('import-percent').getByText('100%', { exact: true }).waitFor();
    assert.equal(await page.locator('#import-progress').evaluate((p) => p.value), 100);
    await page.getByTestId('import-summary').getByText('3 rows: 2 events accepted, 0 duplicates, 1 rows rejected.').waitFor();
    await page.getByRole('cell', { name: /`spring` is not a date/ }).waitFor();
    await accessible(page);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the rejected rows (CSV)' }).click()]);
    assert.equal(download.suggestedFilename(), `import-${stamp}.errors.csv`);
    const text = readFileSync(await download.path(), 'utf8').replace(/^\ufeff/, '');
    const lines = text.trim().split('\r\n');
    assert.equal(lines[0], '手机号,邮箱,姓名,生日,城市,line,field,reason');
    assert.equal(lines.length, 2);
    assert.ok(lines[1].startsWith(`${phone(2)},import-${stamp}-2@example.com,Li Na,spring,上海,3,生日,`), lines[1]);

    // The customers are there, with the quoted name whole.
    const found = await api('GET', `/v1/customers?identity=${encodeURIComponent(`phone:${phone(1)}`)}`);
    assert.equal(found.body.items.length, 1);
    assert.equal(found.body.items[0].profile.name, 'Zhang, "Wei"');
    assert.equal(found.body.items[0].profile.birthday, '1990-05-20');

    // The same file again: duplicates, nothing applied twice.
    await page.reload();
    await page.getByLabel('CSV file (UTF-8 or GBK)').waitFor();
    await upload();
    await page.getByTestId('import-summary').getByText('3 rows: 0 events accepted, 2 duplicates, 1 rows rejected.').waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('settings: CSV import of orders: item rows make one order, an order with a bad row is refused whole', async () => {
  const n = Number.parseInt(stamp.slice(-6), 36) % 100000;
  const phone = `1370${String(n).padStart(5, '0')}77`;
  const csv = [
    '订单号,手机号,付款时间,实付金额,商品编码,数量,单价',
    `CT-${stamp}-1,${phone},2026-11-20 10:15:00,¥1299.00,SKU-A,1,999.00`,
    `CT-${stamp}-1,${phone},2026-11-20 10:15:00,¥1299.00,SKU-B,2,150.00`,
    `CT-${stamp}-2,${phone},2026/11/21 09:00,88,SKU-C,two,88`,
    `CT-${stamp}-2,${phone},2026/11/21 09:00,88,SKU-D,1,0`,
  ].join('\n');
  const page = await signedIn();
  try {
    await open(page, '/settings?tab=import');
    await page.getByLabel('The file holds').selectOption('orders');
    await page.getByLabel('CSV file (UTF-8 or GBK)').setInputFiles({ name: `orders-${stamp}.csv`, mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') });
    // The Chinese headers are matched to their fields.
    assert.equal(await page.getByLabel('Field: 订单号').inputValue(), 'order_id');
    assert.equal(await page.getByLabel('Field: 实付金额').inputValue(), 'amount');
    await page.getByRole('button', { name: 'Import 4 rows' }).click();
    await page.getByTestId('import-summary').getByText('4 rows: 1 events accepted, 0 duplicates, 2 rows rejected.').waitFor();
    await page.getByRole('cell', { name: '`two` is not a whole number' }).waitFor();
    await page.getByRole('cell', { name: `order \`CT-${stamp}-2\` is not imported: its row at line 4 was rejected` }).waitFor();
    const found = await api('GET', `/v1/customers?identity=${encodeURIComponent(`phone:${phone}`)}`);
    assert.equal(found.body.items.length, 1);
    assert.equal(found.body.items[0].stats.order_count, 1);
    assert.equal(found.body.items[0].stats.total_spent, 129900);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('settings: a locked sub-account is unlocked by the owner (or told the kernel cannot yet)', async (t) => {
  const invited = await api('POST', '/v1/console/users', { login: `locked-${stamp}`, role: 'analyst' });
  if (invited.status === 404) {
    t.skip('no console users on this kernel');
    return;
  }
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  const base = process.env.KITH_URL.replace(/\/$/, '');
  const accept = await fetch(`${base}/v1/console/invites/accept`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: invited.body.invite_token, password: `locked-pw-${stamp}` }) });
  assert.equal(accept.status, 200);
  // Five wrong passwords in a row lock the account.
  for (let i = 0; i < 5; i++) await fetch(`${base}/v1/console/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: `locked-${stamp}`, password: 'not-the-password' }) });
  const page = await signedIn();
  try {
    await open(page, '/settings?tab=users');
    const row = page.getByRole('row').filter({ hasText: `locked-${stamp}` });
    await row.getByText('Locked', { exact: true }).waitFor();
    await row.getByRole('button', { name: `Unlock locked-${stamp}` }).click();
    await page.getByText(/is unlocked and may sign in again|Unlocking is not available on this kernel/).waitFor();
    const users = (await api('GET', '/v1/console/users')).body;
    const user = (Array.isArray(users) ? users : users.items).find((u) => u.id === invited.body.user.id);
    if (await page.getByText(/is unlocked/).count()) {
      assert.equal(user.status, 'active');
      await row.getByText('Active', { exact: true }).waitFor();
    }
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
    await api('DELETE', `/v1/console/users/${invited.body.user.id}`);
  }
});

test('settings: the keys list says who created each key when the kernel tells', async () => {
  const keys = (await api('GET', '/v1/keys')).body.items;
  const users = (await api('GET', '/v1/console/users')).body;
  const someone = users && (Array.isArray(users) ? users : users.items || [])[0];
  const page = await signedIn();
  try {
    // As a kernel recording `created_by` answers (older kernels leave it out: no column).
    await page.route('**/v1/keys', async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const res = await route.fetch();
      const body = await res.json();
      body.items = body.items.map((k, i) => ({ ...k, created_by: k.created_by !== undefined ? k.created_by : i === 0 ? 'cli:demo' : someone ? `user:${someone.id}` : null }));
      await route.fulfill({ response: res, json: body });
    });
    await open(page, '/settings?tab=keys');
    await page.getByRole('columnheader', { name: 'Created by' }).waitFor();
    const first = page.getByRole('row').filter({ hasText: keys[0].id });
    await first.waitFor();
    if (!keys[0].created_by) await first.getByText('Command line (demo)').waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

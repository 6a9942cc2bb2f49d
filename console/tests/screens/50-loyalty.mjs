// Loyalty and coupons: a coupon template created in the console (an API error on its field first)
// and its statistics; a reward created in the points mall; tiers and points from the shop's
// loyalty scheme; a customer's redemptions; axe on each view.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, analystPage, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

function money(minor, currency) {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat('en', { style: 'currency', currency }).format(minor / 10 ** digits);
}

const stamp = Date.now().toString(36);

test('loyalty: create a coupon template (its error on the field first) and see its statistics', async () => {
  const shop = (await api('GET', '/v1/shop')).body;
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const name = `Console coupon ${stamp}`;
  const page = await signedIn();
  try {
    await open(page, '/loyalty/coupons');
    await page.getByRole('heading', { name: 'Coupon templates' }).waitFor();
    await page.getByRole('button', { name: 'New coupon template' }).click();
    const dialog = page.getByRole('dialog', { name: 'New coupon template' });
    await dialog.getByLabel('Name').fill(name);
    // A face value of 0 passes the form and is refused by the API, on its field.
    const face = dialog.getByLabel(/^Face value/);
    await face.fill('0');
    await dialog.getByLabel(/^Minimum order/).fill('100');
    await dialog.getByLabel('Valid for (days)').fill('15');
    await dialog.getByLabel('Budget: coupons (empty: no limit)').fill('50');
    await dialog.getByLabel(/^Budget: face value/).fill('500');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'must be between 1 and 100000000 minor units' }).waitFor();
    assert.equal(await face.getAttribute('aria-invalid'), 'true');
    await accessible(page);

    await face.fill('12.50');
    await dialog.getByRole('button', { name: 'Create' }).click();
    // The new template's statistics.
    await page.getByTestId('template-name').getByText(name).waitFor();
    const created = (await api('GET', '/v1/coupon-templates')).body.items.find((t) => t.name === name);
    assert.ok(created, 'the template is in the API');
    assert.equal(created.face_value, 1250);
    assert.equal(created.threshold, 10000);
    assert.equal(created.valid_days, 15);
    assert.equal(created.budget_count, 50);
    assert.equal(created.budget_money, 50000);
    assert.match(page.url(), new RegExp(`#/loyalty/coupons/${created.id}$`));
    await page.getByTestId('stat-issued').getByText('0', { exact: true }).waitFor();
    await page.getByTestId('stat-count-left').getByText('50', { exact: true }).waitFor();
    await page.getByTestId('stat-money-left').getByText(money(50000, shop.currency), { exact: true }).waitFor();

    // One coupon issued: the statistics follow the API's.
    const issued = await api('POST', `/v1/coupon-templates/${created.id}/issue`, { customer_id: customer.id, idempotency_key: `console-test-${stamp}` });
    assert.equal(issued.status, 201);
    const stats = (await api('GET', `/v1/coupon-templates/${created.id}/stats`)).body;
    await page.reload();
    await page.getByTestId('stat-issued').getByText(String(stats.issued), { exact: true }).waitFor();
    await page.getByTestId('stat-count-left').getByText(String(stats.budget_count_left), { exact: true }).waitFor();
    await page.getByTestId('stat-money-left').getByText(money(stats.budget_money_left, shop.currency), { exact: true }).waitFor();
    await accessible(page);
    await screenshot(page, 'loyalty-coupon-stats');

    // Back in the list, the template is a row with its budget.
    await page.getByRole('link', { name: '← Coupon templates' }).click();
    const row = page.getByRole('row').filter({ hasText: name });
    await row.waitFor();
    await accessible(page);

    // Edited: a larger budget.
    await row.getByRole('button', { name: `Edit ${name}` }).click();
    const edit = page.getByRole('dialog', { name: `Edit ${name}` });
    assert.equal(await edit.getByLabel(/^Face value/).inputValue(), '12.50');
    await edit.getByLabel('Budget: coupons (empty: no limit)').fill('60');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'hidden' });
    await row.getByText('60 ·').waitFor();
    assert.equal((await api('GET', `/v1/coupon-templates/${created.id}`)).body.budget_count, 60);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('loyalty: create a reward in the points mall', async () => {
  const template = await api('POST', '/v1/coupon-templates', { name: `Reward coupon ${stamp}`, face_value: 500, valid_days: 30 });
  assert.equal(template.status, 201);
  const name = `Console reward ${stamp}`;
  const page = await signedIn();
  try {
    await open(page, '/loyalty/rewards');
    await page.getByRole('heading', { name: 'Points mall' }).waitFor();
    await page.getByRole('button', { name: 'New reward' }).click();
    const dialog = page.getByRole('dialog', { name: 'New reward' });
    await dialog.getByLabel('Name').fill(name);
    await dialog.getByLabel('Description').fill('Made by the console test');
    await dialog.getByLabel('Points').fill('300');
    await dialog.getByLabel('Coupon it issues').selectOption(String(template.body.id));
    await dialog.getByLabel('Stock (empty: unlimited)').fill('10');
    await dialog.getByRole('button', { name: 'Create' }).click();
    const row = page.getByRole('row').filter({ hasText: name });
    await row.waitFor();
    await row.getByText('300', { exact: true }).waitFor();
    const reward = (await api('GET', '/v1/rewards')).body.items.find((r) => r.name === name);
    assert.ok(reward, 'the reward is in the API');
    assert.equal(reward.points_cost, 300);
    assert.equal(reward.coupon_template_id, template.body.id);
    assert.equal(reward.stock, 10);
    assert.equal(reward.active, true);
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('loyalty: tiers and points of the shop’s scheme, a customer’s redemptions', async () => {
  const subs = (await api('GET', '/v1/shop/plugins')).body.items.filter((s) => s.kind === 'loyalty-scheme' && s.status !== 'disabled');
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const page = await signedIn();
  try {
    await open(page, '/loyalty');
    if (subs.length) {
      const sub = subs[0];
      await page.getByRole('heading', { name: `Points and tiers: ${sub.plugin_id}` }).waitFor();
      for (const tier of sub.config.tiers || []) await page.getByRole('cell', { name: tier.name, exact: true }).waitFor();
      // The earning rule in the shop's currency (one major unit of it), not a fixed “yuan”.
      const unit = new Intl.NumberFormat('en', { style: 'currency', currency: (await api('GET', '/v1/shop')).body.currency, minimumFractionDigits: 0, maximumFractionDigits: 0 }).format(1);
      await page.getByText(`Points per ${unit} paid`, { exact: true }).waitFor();
      // The scheme's rules in the form of its schema: an error on its field, then saved unchanged.
      await page.getByRole('button', { name: 'Edit tiers and points rules' }).click();
      const form = page.getByRole('form', { name: 'Edit tiers and points rules' });
      const schema = (await api('GET', `/v1/plugins/${sub.plugin_id}`)).body.items.find((p) => p.manifest.version === sub.version).manifest['config-schema'];
      const [field, prop] = Object.entries(schema.properties).find(([, p]) => p.type === 'integer' && p.minimum >= 1);
      const input = page.locator(`[data-path="config.${field}"]`);
      const was = await input.inputValue();
      await input.fill(String(prop.minimum - 1));
      await form.getByRole('button', { name: 'Save' }).click();
      await form.locator('.field.has-error').filter({ has: input }).getByRole('alert').filter({ hasText: 'less than the minimum' }).waitFor();
      await accessible(page);
      await input.fill(was);
      await form.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      const after = (await api('GET', `/v1/shop/plugins/${sub.plugin_id}`)).body;
      assert.deepEqual(after.config, sub.config);
      assert.deepEqual(after.grant, sub.grant);
      assert.equal(after.run_every_hours, sub.run_every_hours);
    } else {
      await page.getByText('No loyalty scheme is enabled in this shop').waitFor();
    }
    const settings = (await api('GET', '/v1/shop/settings/loyalty')).body;
    const policy = page.getByRole('radio', { name: settings.refund_policy === 'debt' ? /points debt/ : /Forgive/ });
    assert.equal(await policy.isChecked(), true);
    await accessible(page);
    await screenshot(page, 'loyalty');

    await page.getByRole('tab', { name: 'Redemptions' }).click();
    await page.getByLabel('Customer id').fill(String(customer.id));
    await page.getByRole('button', { name: 'Show redemptions' }).click();
    const redemptions = (await api('GET', `/v1/customers/${customer.id}/redemptions`)).body.items;
    if (redemptions.length) await page.getByRole('cell', { name: redemptions[0].coupon.code }).waitFor();
    else await page.getByText('This customer has redeemed nothing yet.').waitFor();
    await accessible(page);

    // A redemption for the customer: a reward of one point of the test's own, the point added first
    // (beyond any points debt).
    const template = await api('POST', '/v1/coupon-templates', { name: `Redeem coupon ${stamp}`, face_value: 100, valid_days: 7 });
    const reward = await api('POST', '/v1/rewards', { name: `One-point reward ${stamp}`, points_cost: 1, coupon_template_id: template.body.id });
    assert.equal(reward.status, 201);
    const account = (await api('GET', `/v1/customers/${customer.id}/points`)).body;
    const added = await api('POST', `/v1/customers/${customer.id}/points/adjustments`, { points: account.debt + 1, reason: 'console test: a point to redeem', idempotency_key: `console-test-${stamp}` });
    assert.ok(added.status === 201 || added.status === 200, JSON.stringify(added.body));
    await page.reload();
    const redeem = page.getByRole('form', { name: 'Redeem for this customer' });
    await redeem.getByLabel('Redeem for this customer').selectOption(String(reward.body.id));
    await redeem.getByRole('button', { name: 'Redeem' }).click();
    const done = redeem.getByRole('status');
    await done.waitFor();
    const code = (await done.innerText()).match(/coupon (\S+)\./)[1];
    await page.getByRole('cell', { name: code }).waitFor();
    const mine = (await api('GET', `/v1/customers/${customer.id}/redemptions`)).body.items.find((r) => r.coupon.code === code);
    assert.equal(mine.reward_id, reward.body.id);
    assert.equal(mine.points, 1);
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('loyalty: in Chinese', async () => {
  const page = await signedIn(undefined, undefined, { locale: 'zh-CN' });
  try {
    await open(page, '/loyalty/coupons');
    await page.getByRole('heading', { name: '会员与优惠券' }).waitFor();
    await page.getByRole('tab', { name: '优惠券' }).waitFor();
    await page.getByRole('heading', { name: '优惠券模板' }).waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

/** No error box on the page, and none of the buttons that write. */
async function clean(page, writes) {
  assert.equal(await page.locator('.state.error').count(), 0, await page.locator('.state.error').allInnerTexts().then((x) => x.join('\n')));
  for (const name of writes) assert.equal(await page.getByRole('button', { name }).count(), 0, `no “${name}” button`);
}

test('loyalty: an analyst reads coupons, the points mall and redemptions, is told where the tiers live, and changes nothing', async (t) => {
  const analyst = await analystPage(t, 'loyalty');
  if (!analyst) return;
  const { page } = analyst;
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const templates = (await api('GET', '/v1/coupon-templates')).body.items;
  const rewards = (await api('GET', '/v1/rewards')).body.items;
  try {
    // A role that may change neither tiers nor refunds lands on the coupons.
    await open(page, '/loyalty');
    await page.getByRole('heading', { name: 'Coupon templates' }).waitFor();
    if (templates.length) await page.getByRole('link', { name: templates[0].name, exact: true }).first().waitFor();
    await clean(page, ['New coupon template', /^Edit /]);
    await accessible(page);

    await open(page, '/loyalty/tiers');
    await page.getByTestId('tiers-hidden').filter({ hasText: 'plugins:manage' }).waitFor();
    await page.getByText('Refund settings need the loyalty:manage permission.').waitFor();
    await clean(page, ['Edit tiers and points rules']);
    await accessible(page);

    await open(page, '/loyalty/rewards');
    await page.getByRole('heading', { name: 'Points mall' }).waitFor();
    if (rewards.length) await page.getByRole('cell', { name: rewards[0].name }).first().waitFor();
    else await page.getByText('No reward in the points mall yet.').waitFor();
    await clean(page, ['New reward', /^Edit /]);

    await open(page, `/loyalty/redemptions?customer=${customer.id}`);
    await page.getByRole('link', { name: 'Open the customer’s profile' }).waitFor();
    await page.getByRole('region', { name: 'Redemptions' }).locator('table, .state.empty').first().waitFor();
    assert.equal(await page.getByRole('form', { name: 'Redeem for this customer' }).count(), 0, 'no redemption form without loyalty:redeem');
    await clean(page, ['Redeem']);
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await analyst.done();
  }
});

test('loyalty: a failed load of the coupon templates or the rewards is said, not hidden', async () => {
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const page = await signedIn();
  // A failure of the kernel, named by its request id.
  const problem = (id) => ({ status: 500, contentType: 'application/problem+json', body: JSON.stringify({ type: 'about:blank', title: 'Internal Server Error', status: 500, request_id: id }) });
  try {
    await page.route(/\/v1\/coupon-templates(\?|$)/, (route) => route.fulfill(problem('rq-templates-down')));
    await open(page, '/loyalty/rewards');
    await page.getByRole('alert').filter({ hasText: 'rq-templates-down' }).getByRole('button', { name: 'Retry' }).waitFor();
    assert.ok(await page.getByRole('button', { name: 'New reward' }).isDisabled());
    await page.unroute(/\/v1\/coupon-templates(\?|$)/);

    await page.route(/\/v1\/rewards(\?|$)/, (route) => route.fulfill(problem('rq-rewards-down')));
    await open(page, `/loyalty/redemptions?customer=${customer.id}`);
    await page.getByRole('alert').filter({ hasText: 'rq-rewards-down' }).first().waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

// The plugin market: the catalogue with each plugin's state; a channel connector enabled with a
// configuration error shown on its field, then a valid configuration, and its status page
// (a connector enabled when found is disabled first and re-enabled with its own configuration,
// as in CI where the demo's connectors send to a provider stand-in); a scoring model's
// configuration error on its field, a run followed to its end, dead letters and logs; axe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, analystPage, api, noScriptErrors, open, screenshot, signedIn, subAccount } from '../harness.mjs';

const stamp = Date.now().toString(36);

function latest(catalogue) {
  const byId = new Map();
  for (const p of catalogue) byId.set(p.manifest.id, p.manifest);
  return byId;
}

async function disable(page, id) {
  await page.getByRole('button', { name: 'Disable' }).click();
  const dialog = page.getByRole('dialog', { name: `Disable ${id}` });
  await dialog.getByRole('button', { name: 'Disable' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByTestId('plugin-status').getByText('Disabled').waitFor();
}

test('plugins: the catalogue with each plugin’s state in the shop', async () => {
  const catalogue = latest((await api('GET', '/v1/plugins')).body.items);
  const subs = new Map((await api('GET', '/v1/shop/plugins')).body.items.map((s) => [s.plugin_id, s]));
  const page = await signedIn();
  try {
    await open(page, '/plugins');
    await page.getByRole('heading', { name: 'Plugins', exact: true }).waitFor();
    for (const [id] of catalogue) {
      const row = page.getByRole('row').filter({ has: page.getByTestId(`plugin-${id}`) });
      const status = subs.get(id)?.status;
      await row.getByText({ enabled: 'Enabled', disabled: 'Disabled', tripped: 'Tripped (breaker open)' }[status] || 'Not enabled', { exact: true }).waitFor();
    }
    // The kind filter.
    await page.getByLabel('Kind').selectOption('channel-connector');
    const connectors = [...catalogue.values()].filter((m) => m.kind === 'channel-connector').length;
    assert.equal(await page.locator('tbody tr').count(), connectors);
    await page.getByLabel('Kind').selectOption('');
    await accessible(page);
    await screenshot(page, 'plugins');
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('plugins: enable a connector with a config error shown on the field, then a valid config, and see its status page', async () => {
  const catalogue = latest((await api('GET', '/v1/plugins')).body.items);
  const connectors = ['webhook', 'sms-http', 'email-http'].filter((id) => catalogue.has(id));
  assert.ok(connectors.length, 'a channel connector is in the catalogue');
  const states = {};
  for (const id of connectors) {
    const res = await api('GET', `/v1/shop/plugins/${id}`);
    states[id] = res.status === 404 ? null : res.body;
  }
  // One not enabled when found; else one disabled first, then re-enabled as it was.
  const id = connectors.find((c) => !states[c] || states[c].status === 'disabled') || connectors[0];
  const found = states[id];
  const wasEnabled = !!found && found.status !== 'disabled';
  const manifest = catalogue.get(id);
  const schema = manifest['config-schema'];
  const urlField = Object.entries(schema.properties).find(([, p]) => p.pattern === '^https?://')[0];
  const page = await signedIn();
  try {
    await open(page, `/plugins/${id}`);
    await page.getByRole('heading', { name: new RegExp(`^${id}`) }).waitFor();
    if (wasEnabled) {
      await disable(page, id);
    }
    // The capabilities, each explained.
    for (const cap of manifest.capabilities) await page.getByRole('checkbox', { name: new RegExp(`^${cap.replace(/[:]/g, '\\$&')} — `) }).waitFor();
    // Required fields the shop has not set (secrets are never read back: kept when left empty).
    for (const name of schema.required || []) {
      if (name === urlField) continue;
      const p = schema.properties[name];
      if (found && p.writeOnly) continue;
      const input = page.locator(`[data-path="config.${name}"]`);
      if ((await input.inputValue()) !== '') continue;
      await input.fill(p.writeOnly ? `whsec_${'consoletest'.repeat(3)}` : name === 'from' ? 'Shop <hello@shop.example>' : `console-test-${stamp}`);
    }
    // A URL the schema refuses: the API's error lands on that field.
    const url = page.locator(`[data-path="config.${urlField}"]`);
    const good = wasEnabled ? found.config[urlField] : `https://hooks.example.test/kith-${stamp}`;
    await url.fill('not-a-url');
    const submit = page.getByRole('button', { name: found ? /^(Enable|Save changes)$/ : 'Enable' });
    await submit.click();
    const error = page.locator('.field.has-error').filter({ has: url });
    await error.getByRole('alert').waitFor();
    assert.match(await error.getByRole('alert').innerText(), /does not match/);
    assert.equal(await url.getAttribute('aria-invalid'), 'true');
    await accessible(page);

    // A valid one: enabled, with its host granted.
    await url.fill(good);
    const hosts = page.getByLabel('Hosts it may call');
    if (wasEnabled) await hosts.fill(found.grant.allowed_hosts.join(', '));
    else assert.equal(await hosts.inputValue(), new URL(good).host, 'the endpoint’s host is suggested');
    await submit.click();
    await page.getByTestId('plugin-status').getByText('Enabled').waitFor();
    await page.getByTestId('plugin-breaker').getByText('Closed').waitFor();
    await page.getByRole('tab', { name: 'Dead letters' }).waitFor();
    const status = (await api('GET', `/v1/shop/plugins/${id}`)).body;
    assert.equal(status.status, 'enabled');
    assert.equal(status.config[urlField], good);
    assert.deepEqual(status.grant.allowed_hosts, wasEnabled ? found.grant.allowed_hosts : [new URL(good).host]);
    await accessible(page);
    await screenshot(page, 'plugin-detail');

    // Found disabled or not enabled: left disabled, as it sends nowhere real.
    if (!wasEnabled) {
      await disable(page, id);
      assert.equal((await api('GET', `/v1/shop/plugins/${id}`)).body.status, 'disabled');
    }
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('plugins: a scoring model’s config error on its field, a run to its end, dead letters and logs', async () => {
  const subs = (await api('GET', '/v1/shop/plugins')).body.items;
  const sub = subs.find((s) => s.plugin_id === 'rfm' && s.status === 'enabled') || subs.find((s) => s.kind !== 'channel-connector' && s.status === 'enabled');
  assert.ok(sub, 'an enabled plugin that runs over customers');
  const manifest = latest((await api('GET', '/v1/plugins')).body.items).get(sub.plugin_id);
  const [field, prop] = Object.entries(manifest['config-schema'].properties).find(([, p]) => p.type === 'integer' && p.minimum >= 1);
  const page = await signedIn();
  try {
    await open(page, `/plugins/${sub.plugin_id}`);
    await page.getByTestId('plugin-health').waitFor();
    for (const id of ['plugin-lag', 'plugin-calls', 'plugin-failures', 'plugin-p50', 'plugin-p99', 'plugin-breaker']) await page.getByTestId(id).waitFor();
    // Below the schema's minimum: refused, on the field.
    const input = page.locator(`[data-path="config.${field}"]`);
    const before = await input.inputValue();
    await input.fill(String(prop.minimum - 1));
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('.field.has-error').filter({ has: input }).getByRole('alert').filter({ hasText: 'less than the minimum' }).waitFor();
    assert.equal(await input.getAttribute('aria-invalid'), 'true');
    // Put back as it was.
    await input.fill(before);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    assert.deepEqual((await api('GET', `/v1/shop/plugins/${sub.plugin_id}`)).body.config, sub.config);

    // A run over every customer, followed to its end.
    await page.getByRole('tab', { name: 'Runs' }).click();
    const start = page.getByRole('button', { name: 'Run over every customer now' });
    await start.waitFor();
    const top = await page.locator('[data-testid^="run-"]').first().getAttribute('data-testid').catch(() => null);
    await start.click();
    await page.waitForFunction((old) => {
      const el = document.querySelector('[data-testid^="run-"]');
      return el && el.getAttribute('data-testid') !== old && el.textContent === 'Done';
      // A run over every customer, beside the other e2e suites on two cores: give it time.
    }, top, { timeout: 120000 });
    const runId = Number((await page.locator('[data-testid^="run-"]').first().getAttribute('data-testid')).match(/run-(\d+)-status/)[1]);
    const run = (await api('GET', `/v1/shop/plugins/${sub.plugin_id}/runs/${runId}`)).body;
    assert.equal(run.status, 'done');
    assert.equal(run.done, run.total);
    await accessible(page);

    await page.getByRole('tab', { name: 'Dead letters' }).click();
    const letters = (await api('GET', `/v1/shop/plugins/${sub.plugin_id}/dead-letters`)).body.items;
    if (letters.length === 0) await page.getByText('No dead letter').waitFor();
    else await page.getByRole('table').waitFor();
    await page.getByRole('tab', { name: 'Logs' }).click();
    const logs = (await api('GET', `/v1/shop/plugins/${sub.plugin_id}/logs?limit=50`)).body.items;
    if (logs.length === 0) await page.getByText('No log line yet.').waitFor();
    else await page.getByRole('cell', { name: logs[0].message }).first().waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('plugins: in Chinese, each capability explained', async () => {
  const page = await signedIn(undefined, undefined, { locale: 'zh-CN' });
  try {
    await open(page, '/plugins/rfm');
    await page.getByRole('heading', { name: '运行状况' }).waitFor();
    await page.getByRole('checkbox', { name: /^customers:read — 读取店铺的任意客户/ }).waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('plugins: an analyst, who may not read the catalogue, is told so plainly; an operator gets the market', async (t) => {
  const analyst = await analystPage(t, 'plugins');
  if (!analyst) return;
  const { page } = analyst;
  try {
    for (const path of ['/plugins', '/plugins/rfm']) {
      await open(page, path);
      await page.getByRole('heading', { name: 'Your role cannot manage plugins.' }).waitFor();
      await page.getByTestId('plugins-no-scope').filter({ hasText: 'plugins:manage' }).waitFor();
      assert.equal(await page.locator('.state.error').count(), 0);
      assert.equal(await page.getByRole('button').filter({ hasText: /Enable|Save|Disable|Start a run/ }).count(), 0);
    }
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await analyst.done();
  }

  // An operator holds plugins:manage: the catalogue, and the loyalty scheme's rules to edit.
  const operator = await subAccount(t, 'plugins', 'operator');
  if (!operator) return;
  try {
    const catalogue = (await api('GET', '/v1/plugins')).body.items;
    await open(operator.page, '/plugins');
    await operator.page.getByRole('heading', { name: 'Catalogue' }).waitFor();
    if (catalogue.length) await operator.page.getByTestId(`plugin-${catalogue[0].manifest.id}`).waitFor();
    assert.equal(await operator.page.locator('.state.error').count(), 0);
    const schemes = (await api('GET', '/v1/shop/plugins')).body.items.filter((s) => s.kind === 'loyalty-scheme' && s.status !== 'disabled');
    if (schemes.length) {
      await open(operator.page, '/loyalty/tiers');
      await operator.page.getByRole('button', { name: 'Edit tiers and points rules' }).waitFor();
    }
    noScriptErrors(operator.page);
  } finally {
    await operator.done();
  }
});

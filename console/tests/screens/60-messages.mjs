// Messages: quiet hours changed on a channel of the test's own (the API's error on the field first)
// and seen saved; the outbox as the API pages it, with a message's receipts; a customer's consents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, analystPage, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

const stamp = Date.now().toString(36);
// A channel of the test's own: the shop's real channels keep their policies.
const channel = `qa-${stamp}`;

test('messages: change a channel’s quiet hours (an error on the field first) and see them saved', async () => {
  const before = (await api('GET', '/v1/shop/settings/messaging')).body;
  const page = await signedIn();
  try {
    await open(page, '/messages');
    await page.getByRole('heading', { name: 'Channels and their connectors' }).waitFor();
    const form = page.getByTestId('messaging-policies');
    await form.waitFor();
    await form.getByLabel('Add a channel').fill(channel);
    await form.getByRole('button', { name: 'Add', exact: true }).click();
    const policy = form.locator(`fieldset[data-channel="${channel}"]`);
    await policy.waitFor();
    const from = policy.getByLabel('From');
    const to = policy.getByLabel('To');
    // The same start and end: refused by the API, shown on the end.
    await from.fill('21:00');
    await to.fill('21:00');
    await form.getByRole('button', { name: 'Save policies' }).click();
    await policy.getByRole('alert').filter({ hasText: 'must differ from start' }).waitFor();
    assert.equal(await to.getAttribute('aria-invalid'), 'true');
    await accessible(page);

    await to.fill('08:00');
    await policy.getByLabel('At most (messages)').fill('2');
    await policy.getByLabel('per (hours)').fill('24');
    await policy.getByLabel(/^Cost per message/).fill('0.05');
    await form.getByRole('button', { name: 'Save policies' }).click();
    await form.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const saved = (await api('GET', '/v1/shop/settings/messaging')).body.channels[channel];
    assert.deepEqual(saved, { frequency_cap: { max: 2, window_hours: 24 }, quiet_hours: { start: '21:00', end: '08:00' }, cost_per_message: 5 });
    // The shop's other channels are as they were.
    for (const [name, p] of Object.entries(before.channels)) assert.deepEqual((await api('GET', '/v1/shop/settings/messaging')).body.channels[name], p);

    // Opened again, the form shows what was saved.
    await page.reload();
    const again = page.getByTestId('messaging-policies').locator(`fieldset[data-channel="${channel}"]`);
    await again.waitFor();
    assert.equal(await again.getByLabel('From').inputValue(), '21:00');
    assert.equal(await again.getByLabel('To').inputValue(), '08:00');
    await accessible(page);
    await screenshot(page, 'messages');
    noScriptErrors(page);
  } finally {
    await page.context().close();
    // Leave the shop's settings as they were (saving the form also wrote the default policy of
    // each routed channel it listed).
    await api('PUT', '/v1/shop/settings/messaging', before);
  }
});

test('messages: the outbox as the API pages it, filtered by status, with a message’s receipts', async () => {
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  // With a connector enabled, a message of the test's own is in the outbox.
  const enabled = new Set((await api('GET', '/v1/shop/plugins')).body.items.filter((s) => s.status === 'enabled').map((s) => s.plugin_id));
  const channels = (await api('GET', '/v1/shop/channels')).body.items.filter((c) => enabled.has(c.plugin_id));
  let mine = null;
  if (channels.length) {
    const sent = await api('POST', '/v1/messages', {
      customer_id: customer.id,
      channel: channels[0].channel,
      template: 'console-test',
      variables: { run: stamp },
      idempotency_key: `console-test-${stamp}`,
    });
    assert.ok(sent.status === 202 || sent.status === 200, JSON.stringify(sent.body));
    mine = sent.body;
  }
  const page = await signedIn();
  try {
    await open(page, '/messages/outbox');
    await page.getByRole('heading', { name: 'Outbox' }).waitFor();
    const first = (await api('GET', '/v1/messages?limit=50')).body;
    if (first.items.length === 0) {
      await page.getByText('No message has been sent yet.').waitFor();
    } else {
      const top = first.items[0];
      await page.getByRole('link', { name: `Details of message ${top.id}` }).waitFor();
      await page.getByRole('link', { name: `Details of message ${(mine || top).id}` }).click();
      const dialog = page.getByRole('dialog', { name: `Message ${(mine || top).id}` });
      await dialog.getByTestId('message-detail').waitFor();
      await dialog.getByRole('heading', { name: 'Status history and receipts' }).waitFor();
      const detail = (await api('GET', `/v1/messages/${(mine || top).id}`)).body;
      if (detail.history.length) await dialog.getByRole('cell', { name: detail.history[0].detail || detail.history[0].status }).first().waitFor();
      await accessible(page);
      await screenshot(page, 'messages-message');
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'hidden' });
    }
    await screenshot(page, 'messages-outbox');
    // A status filter: the URL keeps it and the rows are the API's.
    await page.getByLabel('Status').selectOption('failed');
    await page.waitForURL(/status=failed/);
    const failed = (await api('GET', '/v1/messages?status=failed&limit=50')).body;
    if (failed.items.length === 0) await page.getByText('No message matches.').waitFor();
    else await page.getByRole('link', { name: `Details of message ${failed.items[0].id}` }).waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('messages: a customer’s consents, recorded and changed', async () => {
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const page = await signedIn();
  try {
    await open(page, '/messages/consents');
    await page.getByLabel('Customer id').fill(String(customer.id));
    await page.getByRole('button', { name: 'Show consents' }).click();
    await page.getByRole('link', { name: 'Open the customer’s profile' }).waitFor();
    // A consent on the test's own channel, then withdrawn.
    const record = page.getByRole('form', { name: 'Record a consent' });
    await record.getByLabel('Channel').fill(channel);
    await record.getByRole('button', { name: 'Opt in', exact: true }).click();
    const row = page.getByRole('row').filter({ hasText: channel });
    await row.getByText('Opted in').waitFor();
    await row.getByRole('button', { name: `Opt out on ${channel}` }).click();
    await row.getByText('Opted out').waitFor();
    const consents = (await api('GET', `/v1/customers/${customer.id}/consents`)).body.items;
    assert.equal(consents.find((c) => c.channel === channel).status, 'opted_out');
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('messages: in Chinese', async () => {
  const page = await signedIn(undefined, undefined, { locale: 'zh-CN' });
  try {
    await open(page, '/messages/outbox');
    await page.getByRole('heading', { name: '消息', exact: true }).waitFor();
    await page.getByRole('heading', { name: '发件箱' }).waitFor();
    await page.getByLabel('状态').waitFor();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('messages: an analyst reads the outbox and a customer’s consents, is told channels need messages:manage, and changes nothing', async (t) => {
  const analyst = await analystPage(t, 'messages');
  if (!analyst) return;
  const { page } = analyst;
  const customer = (await api('GET', '/v1/customers?limit=1')).body.items[0];
  const first = (await api('GET', '/v1/messages?limit=1')).body.items[0];
  const noError = async () => assert.equal(await page.locator('.state.error').count(), 0, (await page.locator('.state.error').allInnerTexts()).join('\n'));
  try {
    // Without messages:manage the screen opens on the outbox.
    await open(page, '/messages');
    await page.getByRole('heading', { name: 'Outbox' }).waitFor();
    if (first) await page.getByTestId('message-status').first().waitFor();
    else await page.getByText('No message has been sent yet.', { exact: false }).waitFor();
    // Statuses in words, never the API's codes.
    for (const code of await page.getByTestId('message-status').allInnerTexts()) assert.ok(!/^[a-z_]+$/.test(code), `status shown raw: ${code}`);
    await noError();
    await accessible(page);

    await open(page, '/messages/channels');
    await page.getByText('Channels and their policies need the messages:manage permission.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save policies' }).count(), 0);
    await noError();

    await open(page, `/messages/consents?customer=${customer.id}`);
    await page.getByRole('link', { name: 'Open the customer’s profile' }).waitFor();
    await page.getByRole('region', { name: 'Consents' }).locator('table, .state.empty').first().waitFor();
    for (const name of [/^Opt in/, /^Opt out/]) assert.equal(await page.getByRole('button', { name }).count(), 0, 'no consent change without customers:write');
    await noError();
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await analyst.done();
  }
});

// Customers: find one by phone, open the 360° profile and its sections, add and remove a
// manual tag; the list pages and filters; axe on the list and the profile; an analyst's view
// (no personal search, masked identities, no tag or unmerge).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, analystPage, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

/** A customer of the shop with a phone and an order, from the API. */
async function customerWithPhone() {
  let cursor = '';
  for (let i = 0; i < 10; i++) {
    const page = await api('GET', `/v1/customers?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200);
    const found = page.body.items.find((c) => c.stats.order_count > 0 && c.identities.some((x) => x.kind === 'phone'));
    if (found) return found;
    if (!page.body.next_cursor) break;
    cursor = page.body.next_cursor;
  }
  throw new Error('no customer with a phone and an order in the shop');
}

test('customers: find a customer by phone and see the profile with its sections', async () => {
  const customer = await customerWithPhone();
  const phone = customer.identities.find((x) => x.kind === 'phone').value;
  const page = await signedIn();
  try {
    await open(page, '/customers');
    await page.getByRole('heading', { name: 'Customers', level: 1 }).waitFor();
    // The first page is listed.
    await page.getByRole('table').getByRole('row').nth(1).waitFor();
    await screenshot(page, 'customers');
    await accessible(page);

    await page.getByLabel('Search by').selectOption('phone');
    await page.getByLabel('Value', { exact: true }).fill(phone);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL(/identity=phone/);
    // The list narrows to the one customer holding the phone.
    await page.waitForFunction(() => document.querySelectorAll('.customers tbody tr').length === 1);
    const link = page.getByRole('link', { name: `#${customer.id}`, exact: true });
    await link.waitFor();
    await link.click();

    await page.getByRole('heading', { name: new RegExp(`Customer ${customer.id}$`) }).waitFor();
    const tabs = page.getByRole('tablist', { name: 'Profile sections' });
    for (const name of ['Profile', 'Tags', 'Scores', 'Points & tier', 'Coupons', 'Messages', 'Journeys', 'Consents', 'Timeline', 'Merges']) {
      await tabs.getByRole('tab', { name, exact: true }).waitFor();
    }
    // Identities and stats.
    await page.getByRole('heading', { name: 'Identities' }).waitFor();
    await page.getByRole('cell', { name: phone, exact: true }).waitFor();
    await page.getByText(String(customer.stats.order_count), { exact: true }).first().waitFor();

    // Scores with their explanations.
    await tabs.getByRole('tab', { name: 'Scores' }).click();
    const rfm = customer.scores.find((s) => s.model === 'rfm');
    if (rfm) await page.getByRole('cell', { name: rfm.explanation, exact: true }).waitFor();

    // Points with the ledger.
    await tabs.getByRole('tab', { name: 'Points & tier' }).click();
    await page.getByRole('heading', { name: 'Points ledger' }).waitFor();
    await page.getByRole('heading', { name: 'Expiring batches' }).waitFor();
    await page.getByRole('heading', { name: 'Tier history' }).waitFor();

    // Every other section answers (a table or its empty state).
    for (const [tab, heading] of [['Coupons', 'Coupons'], ['Messages', 'Messages'], ['Journeys', 'Journeys'], ['Consents', 'Consents'], ['Merges', 'Merges']]) {
      await tabs.getByRole('tab', { name: tab, exact: true }).click();
      await page.getByRole('tabpanel').getByRole('heading', { name: heading, exact: true }).waitFor();
      await page.getByRole('tabpanel').locator('table, .state.empty').first().waitFor();
    }
    await tabs.getByRole('tab', { name: 'Timeline' }).click();
    await page.getByRole('tabpanel').getByText('order.paid').first().waitFor();

    await tabs.getByRole('tab', { name: 'Profile' }).click();
    await page.getByRole('heading', { name: 'Statistics' }).waitFor();
    await screenshot(page, 'customer-profile');
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('customers: add a manual tag with its reason, then remove it', async () => {
  const customer = await customerWithPhone();
  const tag = `console-test-${Date.now().toString(36)}`;
  const page = await signedIn();
  try {
    await open(page, `/customers/${customer.id}?tab=tags`);
    await page.getByRole('heading', { name: 'Add a manual tag' }).waitFor();
    // A refused tag shows the API's message on the field.
    await page.getByLabel('Tag', { exact: true }).fill(' ');
    await page.getByLabel('Reason', { exact: true }).fill('x');
    await page.getByRole('button', { name: 'Add tag' }).click();
    await page.locator('.field.has-error').getByRole('alert').waitFor();

    await page.getByLabel('Tag', { exact: true }).fill(tag);
    await page.getByLabel('Reason', { exact: true }).fill('asked for the newsletter in store');
    await page.getByRole('button', { name: 'Add tag' }).click();
    const row = page.getByRole('row').filter({ hasText: tag });
    await row.getByText('asked for the newsletter in store').waitFor();
    // The source in words: a tag added here is set by hand.
    await row.getByText('By hand', { exact: true }).waitFor();
    const after = await api('GET', `/v1/customers/${customer.id}`);
    assert.ok(after.body.tags.some((t) => t.tag === tag && t.source === 'manual'), 'the API has the tag');
    await accessible(page);

    await page.getByRole('button', { name: `Remove tag ${tag}` }).click();
    await row.waitFor({ state: 'detached' });
    const gone = await api('GET', `/v1/customers/${customer.id}`);
    assert.ok(!gone.body.tags.some((t) => t.tag === tag), 'the API no longer has the tag');
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('customers: filters by score group and the next page', async (t) => {
  // A score group with customers (a shop whose scoring plugins have not run yet has none).
  let group = null;
  for (const model of ['aipl', 'rfm']) {
    const labels = ((await api('GET', `/v1/metrics/scores/${model}`)).body.labels || []).filter((l) => l.customers > 0);
    const pick = labels.find((l) => l.code === 'L') || labels[0];
    if (pick) {
      group = `${model}:${pick.code}`;
      break;
    }
  }
  if (!group) {
    t.skip('no scored customer in the shop');
    return;
  }
  const page = await signedIn();
  try {
    const expected = await api('GET', `/v1/customers?score=${encodeURIComponent(group)}&limit=50`);
    await open(page, '/customers');
    await page.getByLabel('Score group').locator(`option[value="${group}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Score group').selectOption(group);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const first = expected.body.items[0];
    await page.waitForURL(new RegExp(`score=${encodeURIComponent(group)}`));
    await page.getByRole('link', { name: `#${first.id}`, exact: true }).waitFor();
    if (expected.body.next_cursor) {
      await page.getByRole('button', { name: 'Next page' }).click();
      const next = await api('GET', `/v1/customers?score=${encodeURIComponent(group)}&limit=50&cursor=${expected.body.next_cursor}`);
      await page.getByRole('link', { name: `#${next.body.items[0].id}`, exact: true }).waitFor();
      await page.getByRole('button', { name: 'First page' }).waitFor();
    }
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('customers: a segment chosen disables the tag and score filters, and says why', async () => {
  const segments = (await api('GET', '/v1/segments')).body.items || [];
  const page = await signedIn();
  try {
    await open(page, '/customers');
    if (!segments.length) return;
    const seg = segments[0];
    await page.getByLabel('Segment').locator(`option[value="${seg.id}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Tag', { exact: true }).fill('lifecycle:active');
    await page.getByLabel('Segment').selectOption(String(seg.id));
    assert.ok(await page.getByLabel('Tag', { exact: true }).isDisabled());
    assert.ok(await page.getByLabel('Score group').isDisabled());
    await page.getByText(/the tag and score group do not apply while a segment is chosen/).waitFor();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/segment=/);
    assert.doesNotMatch(page.url(), /tag=/);
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('customers: a merged customer leads to the survivor, whose merge is undone after a confirmation', async () => {
  const s = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const a = `merge-a-${s}@example.com`;
  const b = `merge-b-${s}@example.com`;
  const ingest = await api('POST', '/v1/events', {
    events: [
      { id: `console-test:${s}:1`, type: 'customer.upsert', identities: [{ kind: 'email', value: a }], profile: { name: 'Merge A' } },
      { id: `console-test:${s}:2`, type: 'customer.upsert', identities: [{ kind: 'email', value: b }], profile: { name: 'Merge B' } },
      { id: `console-test:${s}:3`, type: 'customer.upsert', identities: [{ kind: 'email', value: a }, { kind: 'email', value: b }] },
    ],
  });
  assert.equal(ingest.status, 200);
  const [survivor, merged] = ingest.body.outcomes.map((o) => o.customer_id);
  assert.notEqual(survivor, merged);
  const page = await signedIn();
  try {
    // The merged customer's link shows the survivor, and says so.
    await open(page, `/customers/${merged}`);
    await page.getByText(`Customer ${merged} was merged into customer ${survivor}; showing ${survivor}.`).waitFor();
    await page.getByRole('tab', { name: 'Merges' }).click();
    const row = page.getByRole('tabpanel').getByRole('row').filter({ has: page.getByRole('link', { name: `#${merged}`, exact: true }) });
    await row.getByRole('button', { name: 'Unmerge' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(`Customer ${merged} comes back`).waitFor();
    await accessible(page);
    await dialog.getByRole('button', { name: 'Unmerge' }).click();
    await page.getByRole('status').filter({ hasText: /Merge \d+ undone\./ }).waitFor();
    await row.getByRole('button', { name: 'Unmerge' }).waitFor({ state: 'detached' });
    const back = await api('GET', `/v1/customers/${merged}`);
    assert.equal(back.status, 200);
    assert.equal(back.body.id, merged);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('customers: an analyst searches by what the role allows, sees identities masked, and may not tag or unmerge', async (t) => {
  // A merge to look at, made with the owner key.
  const s = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const phoneNumber = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  const ingest = await api('POST', '/v1/events', {
    events: [
      { id: `console-test:${s}:1`, type: 'customer.upsert', identities: [{ kind: 'phone', value: phoneNumber }, { kind: 'external:erp', value: `A-${s}` }], profile: { name: 'Analyst A' } },
      { id: `console-test:${s}:2`, type: 'customer.upsert', identities: [{ kind: 'email', value: `analyst-b-${s}@example.com` }] },
      { id: `console-test:${s}:3`, type: 'customer.upsert', identities: [{ kind: 'external:erp', value: `A-${s}` }, { kind: 'email', value: `analyst-b-${s}@example.com` }] },
    ],
  });
  assert.equal(ingest.status, 200, JSON.stringify(ingest.body));
  assert.equal(ingest.body.rejected, 0, JSON.stringify(ingest.body));
  const survivor = ingest.body.outcomes[0].customer_id;
  const analyst = await analystPage(t, 'customers');
  if (!analyst) return;
  const { page } = analyst;
  try {
    await open(page, '/customers');
    await page.getByRole('heading', { name: 'Customers', level: 1 }).waitFor();
    // Personal kinds are refused to the role: phone is not offered, and the form starts on a kind it may use.
    const kind = page.getByLabel('Search by');
    const phone = kind.locator('option[value="phone"]');
    assert.ok((await phone.count()) === 0 || (await phone.isDisabled()), 'the phone search is disabled or absent');
    assert.equal(await kind.inputValue(), 'external');
    await page.getByLabel('Value', { exact: true }).fill(`erp:A-${s}`);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL(/identity=external/);
    await page.getByRole('link', { name: `#${survivor}`, exact: true }).waitFor();
    // Identities come masked.
    const shown = await page.locator('.customers tbody tr td .mono').first().textContent();
    assert.match(shown, /\*{4}/);

    await page.getByRole('link', { name: `#${survivor}`, exact: true }).click();
    await page.getByRole('heading', { name: new RegExp(`Customer ${survivor}$`) }).waitFor();
    const phoneRow = page.getByRole('tabpanel').getByRole('row').filter({ hasText: 'Phone' });
    assert.match(await phoneRow.locator('.mono').textContent(), /\*{4}/);
    assert.ok(!(await page.getByRole('tabpanel').textContent()).includes(phoneNumber), 'the phone is not shown in full');

    // No tag is added, no merge undone.
    await page.getByRole('tab', { name: 'Tags', exact: true }).click();
    await page.getByText('Your role may not change tags.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add tag' }).count(), 0);
    await page.getByRole('tab', { name: 'Merges', exact: true }).click();
    await page.getByRole('tabpanel').getByRole('table').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Unmerge' }).count(), 0);
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await analyst.done();
  }
});

test('customers: a consent and an identity kind read in words, the consent in the right colour', async () => {
  const customer = await customerWithPhone();
  const put = await api('PUT', `/v1/customers/${customer.id}/consents/sms`, { status: 'opted_in', source: 'console-test' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const page = await signedIn();
  try {
    await open(page, `/customers/${customer.id}?tab=consents`);
    const row = page.getByRole('tabpanel').getByRole('row').filter({ hasText: 'sms' });
    const badge = row.getByText('Opted in', { exact: true });
    await badge.waitFor();
    assert.match(await badge.getAttribute('class'), /\bgood\b/);
    await open(page, `/customers/${customer.id}`);
    await page.getByRole('tabpanel').getByRole('cell', { name: 'Phone', exact: true }).waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

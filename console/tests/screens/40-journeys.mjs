// Journeys (自动化营销画布): the list; a journey built on the canvas, a validation error shown on
// the faulty node, fixed and saved; activation, the dry run (checked against the API), statistics,
// pause and archive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, analystPage, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

const node = (page, id) => page.locator(`[data-testid="journey-node"][data-step="${id}"]`);

test('journeys: the list shows each journey with its status', async () => {
  const page = await signedIn();
  const listed = await api('GET', '/v1/journeys');
  assert.equal(listed.status, 200);
  await open(page, '/journeys');
  await page.getByRole('heading', { name: 'Journeys', level: 1 }).waitFor();
  for (const j of listed.body.items.slice(0, 5)) {
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: j.name, exact: true }) });
    assert.equal(await row.getByTestId('journey-status').getAttribute('data-status'), j.status);
  }
  await screenshot(page, 'journeys');
  await accessible(page);
  noScriptErrors(page);
  await page.context().close();
});

test('journeys: build one on the canvas, see the error on the faulty node, fix it, save, activate, dry run, pause, archive', async () => {
  const page = await signedIn();
  await open(page, '/journeys/new');
  await page.getByTestId('journey-editor').waitFor();
  // The only tab of a new journey: clicking it changes nothing (and throws nothing).
  await page.getByRole('tab', { name: 'Canvas' }).click();
  const name = `Thank-you points ${Date.now()}`;
  await page.getByLabel('Name', { exact: true }).fill(name);

  // The new journey: trigger → welcome (a message). Add "award points" after the message.
  await node(page, '@trigger').waitFor();
  await node(page, 'welcome').click();
  await page.getByTestId('node-panel').getByRole('heading', { name: /welcome/ }).waitFor();
  await page.getByLabel('Kind of step').selectOption('points');
  await page.getByTestId('add-step').click();
  await node(page, 'points-1').waitFor();
  assert.equal(await node(page, 'points-1').getAttribute('aria-pressed'), 'true', 'the new step is selected');
  const panel = page.getByTestId('node-panel');

  // No points at all: the API refuses, and the error is shown on that node and on its field.
  await panel.getByLabel('Points', { exact: true }).fill('0');
  await page.getByTestId('save-journey').click();
  await node(page, 'points-1').and(page.locator('[data-error="true"]')).waitFor();
  assert.match(await node(page, 'points-1').getByTestId('node-error').textContent(), /from 1 to 1000000/);
  assert.equal(await panel.getByLabel('Points', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(await node(page, 'welcome').getAttribute('data-error'), null, 'only the faulty node is marked');
  assert.match(page.url(), /#\/journeys\/new/, 'nothing was created');

  // Fixed: saved, the journey opens as a draft.
  await panel.getByLabel('Points', { exact: true }).fill('50');
  await page.getByTestId('save-journey').click();
  await page.waitForURL(/#\/journeys\/\d+$/);
  const id = Number(/#\/journeys\/(\d+)/.exec(page.url())[1]);
  await page.locator('[data-testid="journey-status"][data-status="draft"]').waitFor();
  const saved = await api('GET', `/v1/journeys/${id}`);
  assert.equal(saved.body.name, name);
  assert.equal(saved.body.definition.steps.welcome.next, 'points-1');
  assert.equal(saved.body.definition.steps['points-1'].points.award, 50);
  await node(page, 'points-1').waitFor();

  // Activate.
  await page.getByTestId('activate').click();
  await page.locator('[data-testid="journey-status"][data-status="active"]').waitFor();
  assert.equal((await api('GET', `/v1/journeys/${id}`)).body.status, 'active');

  // The dry run: who would enter now, as the API says.
  await page.getByTestId('dry-run-button').click();
  await page.getByTestId('dry-run').waitFor();
  const dry = await api('GET', `/v1/journeys/${id}/dry-run`);
  assert.equal(dry.status, 200);
  assert.equal((await page.getByTestId('dry-run-count').textContent()).replace(/\D/g, ''), String(dry.body.count));
  await page.getByText(dry.body.basis).waitFor();
  await screenshot(page, 'journey-canvas');
  await accessible(page);

  // Statistics: entered and ROI as the API has them.
  await page.getByRole('tab', { name: 'Statistics' }).click();
  await page.getByTestId('journey-stats').waitFor();
  const stats = await api('GET', `/v1/journeys/${id}/stats`);
  assert.equal((await page.getByTestId('stat-entered').locator('.stat-value').textContent()).replace(/\D/g, ''), String(stats.body.entered));
  await accessible(page);

  // Pause, then archive (so the test leaves no journey running).
  await page.getByRole('tab', { name: 'Canvas' }).click();
  await page.getByTestId('pause').click();
  await page.locator('[data-testid="journey-status"][data-status="paused"]').waitFor();
  // A refusal is shown in the dialog, in front of the page: here the journey was archived
  // meanwhile (through the API), so archiving it again is refused.
  assert.equal((await api('POST', `/v1/journeys/${id}/archive`)).status, 200);
  await page.getByTestId('archive').click();
  const dialog = page.getByRole('dialog', { name: 'Archive this journey?' });
  await dialog.getByTestId('confirm').click();
  await dialog.getByTestId('confirm-error').waitFor();
  assert.ok(await dialog.getByRole('alert').isVisible());
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await page.reload();
  await page.locator('[data-testid="journey-status"][data-status="archived"]').waitFor();
  assert.equal((await api('GET', `/v1/journeys/${id}`)).body.status, 'archived');
  assert.equal(await page.getByTestId('save-journey').count(), 0, 'an archived journey is read-only');

  // An archived journey is copied into a new one to change it.
  await page.getByTestId('copy-journey').click();
  await page.waitForURL(/#\/journeys\/new$/);
  assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), `${name} (copy)`);
  await node(page, 'points-1').waitFor();

  // The copy is not saved yet: leaving asks, and leaves when told to.
  let asked = null;
  page.once('dialog', (d) => {
    asked = d.message();
    d.accept();
  });
  await page.evaluate(() => {
    location.hash = '#/journeys';
  });
  await page.getByRole('heading', { name: 'Journeys', level: 1 }).waitFor();
  assert.match(asked || '', /unsaved changes/);
  noScriptErrors(page);
  await page.context().close();
});

test('journeys: in Chinese, the canvas speaks Chinese', async () => {
  const page = await signedIn(undefined, undefined, { locale: 'zh-CN' });
  await open(page, '/journeys/new');
  await page.getByRole('heading', { name: '新建旅程' }).waitFor();
  await node(page, '@trigger').getByText('触发').waitFor();
  // The operators of a field test are words, not codes.
  await page.getByTestId('trigger-panel').getByRole('button', { name: '+ 字段条件' }).first().click();
  const op = page.getByTestId('trigger-panel').getByLabel('运算符').first();
  assert.equal(await op.locator('option:checked').textContent(), '等于');
  noScriptErrors(page);
  await page.context().close();
});

test('journeys: an analyst sees the canvas and the statistics, and no button that changes a journey', async (t) => {
  const analyst = await analystPage(t, 'journeys');
  if (!analyst) return;
  const { page } = analyst;
  // A journey of its own, with an audience (a customer condition) on its trigger.
  const created = await api('POST', '/v1/journeys', {
    name: `Analyst's view ${Date.now()}`,
    definition: {
      trigger: { event: 'order.paid', customer: { and: [{ stat: 'order_count', op: 'gte', value: 1 }] } },
      start: 'welcome',
      steps: { welcome: { send: { channel: 'sms', template: 'SMS_WELCOME' } } },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const journey = created.body;
  try {
    await open(page, `/journeys/${journey.id}`);
    await node(page, journey.definition.start).waitFor();
    for (const id of ['save-journey', 'activate', 'pause', 'archive', 'add-step']) assert.equal(await page.getByTestId(id).count(), 0, id);
    // The audience builder is shown, not editable.
    await node(page, '@trigger').click();
    const tree = page.getByTestId('node-panel').getByTestId('seg-tree');
    await tree.waitFor();
    assert.ok(await tree.locator('select').first().isDisabled(), 'the audience builder is read-only');
    noScriptErrors(page);
  } finally {
    await api('DELETE', `/v1/journeys/${journey.id}`);
    await analyst.done();
  }
});

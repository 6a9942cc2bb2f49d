// The overview: the GMV of a range is the API's, the presets and custom dates choose the range,
// the charts and distributions are drawn, and the page passes axe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessible, api, noScriptErrors, open, screenshot, signedIn } from '../harness.mjs';

function shopDay(zone, days = 0) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.now() + days * 86400000));
}

function money(minor, currency) {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat('en', { style: 'currency', currency }).format(minor / 10 ** digits);
}

test('overview: the GMV of a range equals the API’s, with the figures, charts and distributions', async () => {
  const shop = (await api('GET', '/v1/shop')).body;
  const page = await signedIn();
  try {
    // A fixed range in the link: the same dates whatever the time of day.
    const to = shopDay(shop.time_zone, -1);
    const from = shopDay(shop.time_zone, -14);
    const expected = await api('GET', `/v1/metrics/overview?from=${from}&to=${to}`);
    assert.equal(expected.status, 200);
    await open(page, `/?from=${from}&to=${to}`);
    const gmv = page.getByTestId('kpi-gmv');
    await gmv.getByText(money(expected.body.sales.gmv, shop.currency), { exact: true }).waitFor();
    await page.getByTestId('kpi-orders').getByText(String(expected.body.sales.orders), { exact: true }).waitFor();
    await page.getByRole('heading', { name: 'GMV by day' }).waitFor();
    await page.getByRole('heading', { name: 'RFM groups' }).waitFor();
    await page.getByRole('heading', { name: 'AIPL funnel' }).waitFor();
    await page.getByRole('heading', { name: 'Membership tiers' }).waitFor();
    await page.getByRole('heading', { name: 'Journeys’ ROI' }).waitFor();
    // Each RFM group of the API is a bar.
    for (const group of expected.body.rfm) {
      const en = group.label.split('|')[2] || group.label;
      await page.getByRole('list', { name: 'RFM groups' }).getByText(en, { exact: true }).waitFor();
    }
    await page.locator('.chart canvas').first().waitFor();
    // The journeys' ROI and the messages per channel are bars, their figures in a table beside.
    const journeys = (await api('GET', '/v1/journeys')).body.items.filter((j) => j.status !== 'archived');
    if (journeys.length) {
      const bars = page.getByRole('list', { name: 'Attributed revenue by journey' });
      await bars.getByRole('link', { name: journeys[0].name, exact: true }).waitFor();
      await bars.getByText(/ROI/).first().waitFor();
    }
    if (expected.body.messages.length) await page.getByRole('list', { name: 'Messages sent by channel' }).getByText(expected.body.messages[0].channel, { exact: true }).waitFor();
    else await page.getByText('No message was sent in this range.').waitFor();
    assert.equal(await page.getByTestId('previous-failed').count(), 0, 'the previous range loaded');

    // A preset: the last 7 days, today included, compared with the 7 before.
    await page.getByRole('button', { name: 'Last 7 days' }).click();
    const today = shopDay(shop.time_zone);
    const week = shopDay(shop.time_zone, -6);
    await page.getByTestId('range').getByText(`${week} – ${today}`, { exact: false }).waitFor();
    const last7 = await api('GET', `/v1/metrics/overview?from=${week}&to=${today}`);
    await page.getByTestId('kpi-gmv').getByText(money(last7.body.sales.gmv, shop.currency), { exact: true }).waitFor();

    // Custom dates: a first day after the last is refused on the field.
    await page.getByRole('button', { name: 'Custom dates' }).click();
    await page.getByLabel('From', { exact: true }).fill(today);
    await page.getByLabel('To', { exact: true }).fill(week);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('must not be after the last day').waitFor();
    await page.getByLabel('From', { exact: true }).fill(from);
    await page.getByLabel('To', { exact: true }).fill(to);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('kpi-gmv').getByText(money(expected.body.sales.gmv, shop.currency), { exact: true }).waitFor();

    await screenshot(page, 'overview');
    await accessible(page);
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('overview: in Chinese, the labels follow', async () => {
  const page = await signedIn(undefined, undefined, { locale: 'zh-CN' });
  try {
    await open(page, '/?days=30');
    await page.getByRole('heading', { name: '概览' }).waitFor();
    await page.getByTestId('kpi-gmv').getByText('成交额（GMV）').waitFor();
    await page.getByRole('button', { name: '近 30 天' }).waitFor();
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

test('overview: a failing previous range or journey is said, the rest still shown', async () => {
  const shop = (await api('GET', '/v1/shop')).body;
  const journeys = (await api('GET', '/v1/journeys')).body.items.filter((j) => j.status !== 'archived');
  const page = await signedIn();
  try {
    const to = shopDay(shop.time_zone, -1);
    const from = shopDay(shop.time_zone, -14);
    const pto = shopDay(shop.time_zone, -15);
    const pfrom = shopDay(shop.time_zone, -28);
    const fail = (route) => route.fulfill({ status: 500, contentType: 'application/problem+json', body: JSON.stringify({ title: 'Internal error', status: 500 }) });
    await page.route((url) => url.pathname === '/v1/metrics/overview' && url.searchParams.get('from') === pfrom && url.searchParams.get('to') === pto, fail);
    if (journeys.length) await page.route(`**/v1/journeys/${journeys[0].id}/stats`, fail);
    await open(page, `/?from=${from}&to=${to}`);
    await page.getByTestId('previous-failed').getByText(/previous range could not be loaded/).waitFor();
    await page.getByTestId('kpi-gmv').waitFor();
    assert.equal(await page.locator('.stat-change').count(), 0, 'no comparison without the previous range');
    if (journeys.length) {
      const bars = page.getByRole('list', { name: 'Attributed revenue by journey' });
      await bars.getByText('figures unavailable').waitFor();
      await page.getByText(/The figures of 1 journey\(s\) could not be loaded/).waitFor();
      if (journeys.length > 1) await bars.getByText(/ROI/).first().waitFor();
    }
    noScriptErrors(page);
  } finally {
    await page.context().close();
  }
});

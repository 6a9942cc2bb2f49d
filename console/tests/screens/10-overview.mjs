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

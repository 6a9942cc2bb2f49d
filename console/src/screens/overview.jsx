// The overview: the shop's figures over a range (7/30/90 days or chosen dates) against the
// range before it, then distributions (RFM groups, the AIPL funnel, tiers), points, coupons,
// messages per channel and the journeys' ROI. The first screen: nothing heavy is loaded here
// but the chart of the daily GMV, drawn once its figures are in.
import { useEffect, useState } from 'preact/hooks';
import { get } from '../api.js';
import { money, number, percent, shopDay, toMajor } from '../format.js';
import { useT } from '../i18n.js';
import { navigate } from '../router.js';
import { Async, Bars, Card, Empty, ErrorBox, Field, Loading, Stat, Table, useApi, useProblemText } from '../ui.jsx';
import { addDays, bucketSize, buckets, isDate, previousRange, spanDays } from './overview/dates.js';
import { change, fieldMessage, labelText, pool } from './overview/util.js';
import { currentLocale, currentShop } from '../session.js';
import './overview/overview.css';

const strings = {
  en: {
    title: 'Overview',
    range: 'Range',
    last: 'Last {n} days',
    custom: 'Custom dates',
    from: 'From',
    to: 'To',
    apply: 'Apply',
    vsPrevious: '{from} – {to}, compared with {pfrom} – {pto}',
    gmv: 'GMV',
    orders: 'Orders',
    aov: 'Average order value',
    buyers: 'Buyers',
    newBuyers: 'New buyers',
    returningBuyers: 'Returning buyers',
    repurchase: 'Repurchase rate',
    refunds: 'Refunds',
    net: 'Net sales',
    newRevenue: 'New customers’ revenue',
    returningRevenue: 'Returning customers’ revenue',
    customers: 'Customers',
    newCustomers: 'New customers',
    active: 'Active',
    sleeping: 'Sleeping',
    churned: 'Churned',
    neverBought: 'Never bought',
    lifecycle: 'By last order',
    sales: 'Sales',
    dailyGmv: 'GMV by day',
    weeklyGmv: 'GMV by week',
    periodGmv: 'GMV per {n} days',
    thisRange: 'This range',
    previous: 'Previous range',
    rfm: 'RFM groups',
    aipl: 'AIPL funnel',
    reached: '{n} reached',
    tiers: 'Membership tiers',
    points: 'Points',
    issued: 'Issued',
    redeemed: 'Redeemed',
    expired: 'Expired',
    clawedBack: 'Clawed back',
    outstanding: 'Liability (outstanding)',
    debt: 'Owed by customers',
    coupons: 'Coupons',
    couponCost: 'Cost of redeemed coupons',
    messages: 'Messages by channel',
    channel: 'Channel',
    sent: 'Sent',
    delivered: 'Delivered',
    failed: 'Failed',
    suppressed: 'Suppressed',
    pending: 'Pending',
    noMessages: 'No message was sent in this range.',
    journeys: 'Journeys’ ROI',
    journey: 'Journey',
    status: 'Status',
    entered: 'Entered',
    converted: 'Converted',
    revenue: 'Revenue',
    cost: 'Cost',
    roi: 'ROI',
    noJourneys: 'No journey yet.',
    noCustomers: 'No customer yet: import customers and orders ({link}) or send events to the API.',
    importLink: 'Settings → CSV import',
    retry: 'Retry',
    previousFailed: 'The previous range could not be loaded, so no comparison is shown: {error}',
    journeyFailed: 'figures unavailable',
    journeyFailedNote: 'The figures of {n} journey(s) could not be loaded: {error}',
    byChannel: 'Messages sent by channel',
    byJourney: 'Attributed revenue by journey',
    figures: 'The figures',
    sentOf: '{sent} sent · {delivered} delivered',
    revenueRoi: '{revenue} · ROI {roi}',
    none: 'None yet.',
    badDate: 'Enter a date',
    order: 'must not be after the last day',
    draft: 'draft',
    active_: 'active',
    paused: 'paused',
    archived: 'archived',
  },
  'zh-CN': {
    title: '概览',
    range: '时间范围',
    last: '近 {n} 天',
    custom: '自定义日期',
    from: '开始日期',
    to: '结束日期',
    apply: '应用',
    vsPrevious: '{from} – {to}，对比 {pfrom} – {pto}',
    gmv: '成交额（GMV）',
    orders: '订单数',
    aov: '客单价',
    buyers: '购买人数',
    newBuyers: '新购买人数',
    returningBuyers: '老客购买人数',
    repurchase: '复购率',
    refunds: '退款',
    net: '净销售额',
    newRevenue: '新客销售额',
    returningRevenue: '老客销售额',
    customers: '客户',
    newCustomers: '新客户',
    active: '活跃',
    sleeping: '沉睡',
    churned: '流失',
    neverBought: '未购买',
    lifecycle: '按最近一次下单',
    sales: '销售',
    dailyGmv: '每日成交额',
    weeklyGmv: '每周成交额',
    periodGmv: '每 {n} 天成交额',
    thisRange: '本期',
    previous: '上期',
    rfm: 'RFM 分群',
    aipl: 'AIPL 漏斗',
    reached: '累计 {n}',
    tiers: '会员等级分布',
    points: '积分',
    issued: '发放',
    redeemed: '兑换',
    expired: '过期',
    clawedBack: '扣回',
    outstanding: '积分负债（未使用）',
    debt: '客户欠分',
    coupons: '优惠券',
    couponCost: '已核销券成本',
    messages: '各渠道消息',
    channel: '渠道',
    sent: '已发送',
    delivered: '已送达',
    failed: '失败',
    suppressed: '已拦截',
    pending: '待发送',
    noMessages: '该时间范围内没有发送消息。',
    journeys: '自动化营销 ROI',
    journey: '旅程',
    status: '状态',
    entered: '进入',
    converted: '转化',
    revenue: '收入',
    cost: '成本',
    roi: 'ROI',
    noJourneys: '还没有旅程。',
    noCustomers: '还没有客户：请导入客户和订单（{link}），或通过 API 发送事件。',
    importLink: '设置 → CSV 导入',
    retry: '重试',
    previousFailed: '上期数据加载失败，暂不显示对比：{error}',
    journeyFailed: '数据不可用',
    journeyFailedNote: '{n} 个旅程的数据加载失败：{error}',
    byChannel: '各渠道发送量',
    byJourney: '各旅程归因收入',
    figures: '详细数据',
    sentOf: '已发送 {sent} · 送达 {delivered}',
    revenueRoi: '{revenue} · ROI {roi}',
    none: '暂无。',
    badDate: '请输入日期',
    order: '不能晚于结束日期',
    draft: '草稿',
    active_: '进行中',
    paused: '已暂停',
    archived: '已归档',
  },
};

const PRESETS = ['7', '30', '90'];

/** Money for a chart's axis: `¥4.5K`, `¥1.2万`. */
function compactMoney(minor) {
  if (minor === null || minor === undefined) return '—';
  const currency = currentShop()?.currency || 'CNY';
  try {
    return new Intl.NumberFormat(currentLocale(), { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }).format(Number(toMajor(minor)));
  } catch {
    return money(minor);
  }
}

/** The range the route asks for: `?days=7|30|90` or `?from=…&to=…`; 30 days by default. */
function rangeOf(query) {
  const today = shopDay(0);
  if (isDate(query.from) && isDate(query.to) && query.from <= query.to) return { preset: 'custom', from: query.from, to: query.to };
  const days = PRESETS.includes(query.days) ? query.days : '30';
  return { preset: days, from: addDays(today, -(Number(days) - 1)), to: today };
}

function RangePicker({ range, apiError, t }) {
  const [from, setFrom] = useState(range.from);
  const [to, setTo] = useState(range.to);
  const [custom, setCustom] = useState(range.preset === 'custom');
  const [errors, setErrors] = useState({});
  useEffect(() => {
    setFrom(range.from);
    setTo(range.to);
  }, [range.from, range.to]);
  const apply = (e) => {
    e.preventDefault();
    const errs = {};
    if (!isDate(from)) errs.from = t('badDate');
    if (!isDate(to)) errs.to = t('badDate');
    if (!errs.from && !errs.to && from > to) errs.from = t('order');
    setErrors(errs);
    if (Object.keys(errs).length === 0) navigate('/', { from, to });
  };
  return (
    <form class="toolbar" onSubmit={apply} aria-label={t('range')}>
      <div class="actions" role="group" aria-label={t('range')}>
        {PRESETS.map((d) => (
          <button
            type="button"
            class={range.preset === d && !custom ? 'primary' : ''}
            aria-pressed={range.preset === d && !custom ? 'true' : 'false'}
            onClick={() => {
              setCustom(false);
              navigate('/', { days: d });
            }}
          >
            {t('last', { n: d })}
          </button>
        ))}
        <button type="button" class={custom ? 'primary' : ''} aria-pressed={custom ? 'true' : 'false'} onClick={() => setCustom(true)}>
          {t('custom')}
        </button>
      </div>
      {custom && (
        <>
          <Field label={t('from')} error={errors.from || (apiError && apiError.field === 'from' ? fieldMessage(apiError) : null)}>
            {(p) => <input {...p} type="date" name="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />}
          </Field>
          <Field label={t('to')} error={errors.to || (apiError && apiError.field === 'to' ? fieldMessage(apiError) : null)}>
            {(p) => <input {...p} type="date" name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />}
          </Field>
          <button type="submit" class="primary">
            {t('apply')}
          </button>
        </>
      )}
    </form>
  );
}

/** GMV per day (or per week for long ranges) of this range and the previous one, from the overview of each bucket. */
function GmvChart({ from, to, t }) {
  const [state, setState] = useState({ data: null, error: null });
  // uPlot is loaded with the figures, not with the first screen.
  const [chart, setChart] = useState(null);
  useEffect(() => {
    import('../charts.jsx').then(
      (m) => setChart(() => m.LineChart),
      (error) => setState({ data: null, error }),
    );
  }, []);
  const LineChart = chart;
  useEffect(() => {
    const ctl = new AbortController();
    setState({ data: null, error: null });
    const prev = previousRange(from, to);
    const cur = buckets(from, to);
    const old = buckets(prev.from, prev.to);
    const all = [...cur, ...old];
    pool(all, 6, (b) => get('/v1/metrics/overview', { from: b.from, to: b.to }, { signal: ctl.signal }), ctl.signal).then(
      (res) => {
        const gmv = res.map((r) => r.sales.gmv);
        setState({ data: { days: cur.map((b) => b.from), now: gmv.slice(0, cur.length), before: cur.map((_, i) => gmv[cur.length + i] ?? null), size: bucketSize(spanDays(from, to)) }, error: null });
      },
      (error) => {
        if (error.name !== 'AbortError') setState({ data: null, error });
      },
    );
    return () => ctl.abort();
  }, [from, to]);
  const size = bucketSize(spanDays(from, to));
  const title = size === 1 ? t('dailyGmv') : size === 7 ? t('weeklyGmv') : t('periodGmv', { n: size });
  return (
    <Card title={title} id="gmv-chart">
      {state.error ? (
        <ErrorBox error={state.error} />
      ) : !state.data || !LineChart ? (
        <Loading />
      ) : (
        <LineChart
          label={title}
          days={state.data.days}
          format={compactMoney}
          series={[
            { label: t('thisRange'), values: state.data.now },
            { label: t('previous'), values: state.data.before, dashed: true },
          ]}
        />
      )}
    </Card>
  );
}

function Kpis({ now, before, t }) {
  const c = now.customers;
  const p = before ? before.customers : null;
  const s = now.sales;
  const ps = before ? before.sales : null;
  const returning = c.buyers - c.new_buyers;
  const pReturning = p ? p.buyers - p.new_buyers : null;
  return (
    <div class="stats" data-testid="kpis">
      <Stat testid="kpi-gmv" label={t('gmv')} value={money(s.gmv)} change={change(s.gmv, ps && ps.gmv)} />
      <Stat testid="kpi-orders" label={t('orders')} value={number(s.orders)} change={change(s.orders, ps && ps.orders)} />
      <Stat testid="kpi-aov" label={t('aov')} value={money(s.aov)} change={change(s.aov, ps && ps.aov)} />
      <Stat testid="kpi-buyers" label={t('buyers')} value={number(c.buyers)} change={change(c.buyers, p && p.buyers)} />
      <Stat testid="kpi-new-buyers" label={t('newBuyers')} value={number(c.new_buyers)} change={change(c.new_buyers, p && p.new_buyers)} />
      <Stat testid="kpi-returning-buyers" label={t('returningBuyers')} value={number(returning)} change={change(returning, pReturning)} />
      <Stat testid="kpi-repurchase" label={t('repurchase')} value={percent(c.repurchase_rate)} change={change(c.repurchase_rate, p && p.repurchase_rate)} />
      <Stat testid="kpi-net" label={t('net')} value={money(s.net)} change={change(s.net, ps && ps.net)} />
    </div>
  );
}

function Journeys({ t }) {
  const list = useApi('/v1/journeys');
  const [stats, setStats] = useState({ data: null, error: null });
  const items = list.data ? list.data.items.filter((j) => j.status !== 'archived').slice(0, 20) : null;
  const ids = items ? items.map((j) => j.id).join(',') : null;
  useEffect(() => {
    if (!items) return undefined;
    const ctl = new AbortController();
    // One journey's figures failing leaves the others shown: its row says so.
    const one = (j) =>
      get(`/v1/journeys/${j.id}/stats`, null, { signal: ctl.signal }).catch((error) => {
        if (error.name === 'AbortError') throw error;
        return { error };
      });
    pool(items, 4, one, ctl.signal).then(
      (data) => setStats({ data, error: null }),
      (error) => error.name !== 'AbortError' && setStats({ data: null, error }),
    );
    return () => ctl.abort();
  }, [ids]);
  return (
    <Card title={t('journeys')} id="journeys">
      <Async state={list} isEmpty={(d) => d.items.length === 0} empty={t('noJourneys')}>
        {() =>
          stats.error ? (
            <ErrorBox error={stats.error} />
          ) : !stats.data ? (
            <Loading />
          ) : (
            <JourneyFigures rows={items.map((j, i) => ({ ...j, s: stats.data[i] && !stats.data[i].error ? stats.data[i] : null, error: stats.data[i] && stats.data[i].error }))} t={t} />
          )
        }
      </Async>
    </Card>
  );
}

const roiText = (s) => (s.roi === null || s.roi === undefined ? '—' : `${number(s.roi, 2)}×`);

/** The journeys' attributed revenue as bars (ROI beside each), then every figure in a table. */
function JourneyFigures({ rows, t }) {
  const failed = rows.filter((r) => r.error);
  const problem = useProblemText();
  const dash = (r, f) => (r.s ? f(r.s) : '—');
  return (
    <>
      {failed.length > 0 && (
        <p class="hint" role="status">
          {t('journeyFailedNote', { n: failed.length, error: problem(failed[0].error) })}
        </p>
      )}
      <Bars
        label={t('byJourney')}
        items={rows.map((r) => ({
          label: <a href={`#/journeys/${r.id}`}>{r.name}</a>,
          value: r.s ? Math.max(0, r.s.attributed_revenue || 0) : 0,
          display: r.s ? t('revenueRoi', { revenue: money(r.s.attributed_revenue), roi: roiText(r.s) }) : t('journeyFailed'),
        }))}
      />
      <details class="figures">
        <summary>{t('figures')}</summary>
        <Table
          rowKey={(r) => r.id}
          columns={[
            { key: 'name', label: t('journey'), render: (r) => <a href={`#/journeys/${r.id}`}>{r.name}</a> },
            { key: 'status', label: t('status'), render: (r) => <span class={`badge ${r.status === 'active' ? 'good' : ''}`}>{t(r.status === 'active' ? 'active_' : r.status)}</span> },
            { key: 'entered', label: t('entered'), class: 'num', render: (r) => (r.s ? number(r.s.entered) : <span class="muted">{t('journeyFailed')}</span>) },
            { key: 'converted', label: t('converted'), class: 'num', render: (r) => dash(r, (s) => number(s.converted)) },
            { key: 'revenue', label: t('revenue'), class: 'num', render: (r) => dash(r, (s) => money(s.attributed_revenue)) },
            { key: 'cost', label: t('cost'), class: 'num', render: (r) => dash(r, (s) => money(s.cost)) },
            { key: 'roi', label: t('roi'), class: 'num', render: (r) => dash(r, roiText) },
          ]}
          rows={rows}
        />
      </details>
    </>
  );
}

function Details({ o, t }) {
  const c = o.customers;
  const total = c.total || 1;
  return (
    <>
      <div class="grid">
        <Card title={t('customers')} id="customers">
          <div class="stats">
            <Stat label={t('customers')} value={number(c.total)} />
            <Stat label={t('newCustomers')} value={number(c.new)} />
          </div>
          <h3>{t('lifecycle')}</h3>
          <Bars
            label={t('lifecycle')}
            items={[
              { label: t('active'), value: c.active, display: `${number(c.active)} · ${percent(c.active / total)}` },
              { label: t('sleeping'), value: c.sleeping, display: `${number(c.sleeping)} · ${percent(c.sleeping / total)}` },
              { label: t('churned'), value: c.churned, display: `${number(c.churned)} · ${percent(c.churned / total)}` },
              { label: t('neverBought'), value: c.never_bought, display: `${number(c.never_bought)} · ${percent(c.never_bought / total)}` },
            ]}
          />
        </Card>
        <Card title={t('sales')} id="sales">
          <Bars
            label={t('sales')}
            items={[
              { label: t('newRevenue'), value: o.sales.new_customer_revenue, display: money(o.sales.new_customer_revenue) },
              { label: t('returningRevenue'), value: o.sales.returning_customer_revenue, display: money(o.sales.returning_customer_revenue) },
              { label: t('refunds'), value: o.sales.refunds, display: money(o.sales.refunds) },
            ]}
          />
        </Card>
      </div>
      <div class="grid">
        <Card title={t('rfm')} id="rfm">
          {o.rfm.length ? (
            <Bars label={t('rfm')} items={o.rfm.map((r) => ({ label: <a href={`#/customers?score=${encodeURIComponent(`rfm:${r.code}`)}`}>{labelText(r.label)}</a>, value: r.customers, display: number(r.customers) }))} />
          ) : (
            <Empty>{t('none')}</Empty>
          )}
        </Card>
        <Card title={t('aipl')} id="aipl">
          {o.aipl.length ? (
            <Bars
              label={t('aipl')}
              items={o.aipl.map((s) => ({
                label: `${s.stage} · ${labelText(s.label)}`,
                value: s.reached,
                display: s.conversion === null || s.conversion === undefined ? number(s.reached) : `${number(s.reached)} · ${percent(s.conversion)}`,
              }))}
            />
          ) : (
            <Empty>{t('none')}</Empty>
          )}
        </Card>
        <Card title={t('tiers')} id="tiers">
          {o.tiers.length ? <Bars label={t('tiers')} items={o.tiers.map((r) => ({ label: labelText(r.label), value: r.customers, display: number(r.customers) }))} /> : <Empty>{t('none')}</Empty>}
        </Card>
      </div>
      <div class="grid">
        <Card title={t('points')} id="points">
          <div class="stats">
            <Stat testid="kpi-points-liability" label={t('outstanding')} value={number(o.points.outstanding)} />
            <Stat label={t('issued')} value={number(o.points.issued)} />
            <Stat label={t('redeemed')} value={number(o.points.redeemed)} />
            <Stat label={t('expired')} value={number(o.points.expired)} />
            <Stat label={t('clawedBack')} value={number(o.points.clawed_back)} />
            <Stat label={t('debt')} value={number(o.points.debt)} />
          </div>
        </Card>
        <Card title={t('coupons')} id="coupons">
          <div class="stats">
            <Stat label={t('issued')} value={number(o.coupons.issued)} />
            <Stat label={t('redeemed')} value={number(o.coupons.redeemed)} />
            <Stat label={t('couponCost')} value={money(o.coupons.cost)} />
          </div>
        </Card>
      </div>
      <Card title={t('messages')} id="messages">
        {o.messages.length ? (
          <>
            <Bars
              label={t('byChannel')}
              items={o.messages.map((r) => ({
                label: r.channel,
                value: r.sent,
                display: t('sentOf', { sent: number(r.sent), delivered: r.sent ? percent(r.delivered / r.sent) : number(r.delivered) }),
              }))}
            />
            <details class="figures">
              <summary>{t('figures')}</summary>
              <Table
                rowKey={(r) => r.channel}
                columns={[
                  { key: 'channel', label: t('channel') },
                  { key: 'sent', label: t('sent'), class: 'num', render: (r) => number(r.sent) },
                  { key: 'delivered', label: t('delivered'), class: 'num', render: (r) => `${number(r.delivered)}${r.sent ? ` · ${percent(r.delivered / r.sent)}` : ''}` },
                  { key: 'failed', label: t('failed'), class: 'num', render: (r) => number(r.failed) },
                  { key: 'suppressed', label: t('suppressed'), class: 'num', render: (r) => number(r.suppressed) },
                  { key: 'pending', label: t('pending'), class: 'num', render: (r) => number(r.pending) },
                ]}
                rows={o.messages}
              />
            </details>
          </>
        ) : (
          <Empty>{t('noMessages')}</Empty>
        )}
      </Card>
    </>
  );
}

/** The empty shop's first steps, the import a link to its tab. */
function NoCustomers({ t }) {
  const [before, after] = t('noCustomers').split('{link}');
  return (
    <>
      {before}
      <a href="#/settings?tab=import">{t('importLink')}</a>
      {after}
    </>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  const range = rangeOf(route.query || {});
  const prev = previousRange(range.from, range.to);
  const now = useApi('/v1/metrics/overview', { from: range.from, to: range.to });
  const before = useApi('/v1/metrics/overview', { from: prev.from, to: prev.to });
  const problem = useProblemText();
  return (
    <div class="overview">
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <RangePicker range={range} apiError={now.error} t={t} />
      <p class="muted" data-testid="range">
        {t('vsPrevious', { from: range.from, to: range.to, pfrom: prev.from, pto: prev.to })}
      </p>
      {before.error && !now.error && (
        <p class="hint" role="status" data-testid="previous-failed">
          {t('previousFailed', { error: problem(before.error) })}{' '}
          <button type="button" class="link" onClick={before.reload}>
            {t('retry')}
          </button>
        </p>
      )}
      <Async state={now} isEmpty={(o) => o.customers.total === 0 && o.sales.orders === 0} empty={<NoCustomers t={t} />}>
        {(o) => (
          <>
            <Card>
              <Kpis now={o} before={before.data} t={t} />
            </Card>
            <GmvChart from={range.from} to={range.to} t={t} />
            <Details o={o} t={t} />
            <Journeys t={t} />
          </>
        )}
      </Async>
    </div>
  );
}

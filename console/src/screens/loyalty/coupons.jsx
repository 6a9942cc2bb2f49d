// Coupon templates with their budgets (GET/POST/PUT /v1/coupon-templates) and a template's
// statistics (GET /v1/coupon-templates/{id}/stats): `#/loyalty/coupons` and `#/loyalty/coupons/<id>`.
import { post, put } from '../../api.js';
import { useT } from '../../i18n.js';
import { href, navigate } from '../../router.js';
import { can, currentShop } from '../../session.js';
import { Async, Bars, Card, ErrorBox, Field, Stat, Table, useApi } from '../../ui.jsx';
import { date, money, number, percent, toMajor, toMinor } from '../../format.js';
import { errorOn } from '../plugins/schema-form.jsx';
import { EditButton, EditableList, FormActions, InputField, useForm, wholeNumber } from './common.jsx';

const strings = {
  en: {
    templates: 'Coupon templates',
    newTemplate: 'New coupon template',
    editTemplate: 'Edit {name}',
    none: 'No coupon template yet. Create one to issue coupons in journeys and the points mall.',
    name: 'Name',
    faceValue: 'Face value',
    threshold: 'Minimum order (0: none)',
    thresholdShort: 'Minimum order',
    validity: 'Validity',
    validDaysOpt: 'Days after issue',
    validUntilOpt: 'Until a date',
    validDays: 'Valid for (days)',
    validUntil: 'Valid until (end of day, shop time)',
    days: '{n} days',
    until: 'until {d}',
    perCustomer: 'Per customer',
    perCustomerLimit: 'Coupons per customer',
    budgetCount: 'Budget: coupons (empty: no limit)',
    budgetMoney: 'Budget: face value (empty: no limit)',
    budget: 'Budget',
    noLimit: 'no limit',
    issued: 'Issued',
    redeemed: 'Redeemed',
    expired: 'Expired',
    active: 'Active',
    activeLabel: 'Active (can be issued)',
    inactive: 'Inactive',
    on: 'Active',
    actions: 'Actions',
    stats: 'Statistics',
    statsOf: 'Statistics of {name}',
    edit: 'Edit',
    editOf: 'Edit {name}',
    create: 'Create',
    save: 'Save',
    cancel: 'Cancel',
    amountNeeded: 'Enter an amount, e.g. 10 or 9.90.',
    countNeeded: 'Enter a whole number.',
    dateNeeded: 'Choose a date.',
    back: '← Coupon templates',
    redemptionRate: 'Redemption rate',
    cost: 'Cost (redeemed face value)',
    revenue: 'Revenue of their orders',
    roi: 'Revenue per cost',
    countLeft: 'Coupons left in budget',
    moneyLeft: 'Face value left in budget',
    usage: 'Budget used',
    byCount: 'Coupons',
    byMoney: 'Face value',
    outcome: 'Issued coupons by outcome',
    open: 'Still open',
    terms: 'Terms',
    spendOver: '{v} off orders from {t}',
    noThreshold: '{v} off any order',
  },
  'zh-CN': {
    templates: '优惠券模板',
    newTemplate: '新建优惠券模板',
    editTemplate: '编辑 {name}',
    none: '还没有优惠券模板。创建后即可在营销流程和积分商城中发券。',
    name: '名称',
    faceValue: '面额',
    threshold: '使用门槛（0 为无门槛）',
    thresholdShort: '使用门槛',
    validity: '有效期',
    validDaysOpt: '领取后若干天',
    validUntilOpt: '截止到某日',
    validDays: '有效天数',
    validUntil: '有效期至（店铺时区当日结束）',
    days: '{n} 天',
    until: '至 {d}',
    perCustomer: '每人限领',
    perCustomerLimit: '每位客户可领张数',
    budgetCount: '预算：张数（留空为不限）',
    budgetMoney: '预算：面额总计（留空为不限）',
    budget: '预算',
    noLimit: '不限',
    issued: '已发放',
    redeemed: '已核销',
    expired: '已过期',
    active: '状态',
    activeLabel: '启用（可发放）',
    inactive: '已停用',
    on: '启用中',
    actions: '操作',
    stats: '统计',
    statsOf: '{name} 的统计',
    edit: '编辑',
    editOf: '编辑 {name}',
    create: '创建',
    save: '保存',
    cancel: '取消',
    amountNeeded: '请输入金额，例如 10 或 9.90。',
    countNeeded: '请输入整数。',
    dateNeeded: '请选择日期。',
    back: '← 优惠券模板',
    redemptionRate: '核销率',
    cost: '成本（已核销面额）',
    revenue: '带动订单收入',
    roi: '收入 / 成本',
    countLeft: '预算剩余张数',
    moneyLeft: '预算剩余面额',
    usage: '预算使用',
    byCount: '张数',
    byMoney: '面额',
    outcome: '已发放优惠券的去向',
    open: '未使用',
    terms: '规则',
    spendOver: '满 {t} 减 {v}',
    noThreshold: '无门槛减 {v}',
  },
};

/** The instant a shop-zone day ends (`2026-12-31` → 2026-12-31T23:59:59 in the shop's zone, as UTC). */
export function endOfShopDay(day) {
  const zone = currentShop()?.time_zone || 'UTC';
  const [y, m, d] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d, 23, 59, 59);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(guess))
      .map((p) => [p.type, p.value]),
  );
  const shown = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return new Date(guess - (shown - guess)).toISOString();
}

/** The shop-zone day of an instant, `YYYY-MM-DD`. */
function shopDayOf(iso) {
  const zone = currentShop()?.time_zone || 'UTC';
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
}

export function terms(t, tpl) {
  return tpl.threshold > 0 ? t('spendOver', { v: money(tpl.face_value), t: money(tpl.threshold) }) : t('noThreshold', { v: money(tpl.face_value) });
}

function TemplateForm({ template, onDone, onCancel }) {
  const t = useT(strings);
  const { f, setF, set, error, setError, busy, run, onSubmit } = useForm(() => ({
    name: template ? template.name : '',
    face: template ? toMajor(template.face_value) : '',
    threshold: template ? toMajor(template.threshold) : '0',
    mode: template && template.valid_until ? 'until' : 'days',
    days: template && template.valid_days ? String(template.valid_days) : '30',
    until: template && template.valid_until ? shopDayOf(template.valid_until) : '',
    perCustomer: template ? String(template.per_customer_limit) : '1',
    budgetCount: template && template.budget_count !== null ? String(template.budget_count) : '',
    budgetMoney: template && template.budget_money !== null ? toMajor(template.budget_money) : '',
    active: template ? template.active : true,
  }));
  const int = wholeNumber;
  const submit = onSubmit(() => {
    const body = {
      name: f.name.trim(),
      face_value: toMinor(f.face),
      threshold: f.threshold.trim() === '' ? 0 : toMinor(f.threshold),
      per_customer_limit: int(f.perCustomer),
      budget_count: f.budgetCount.trim() === '' ? null : int(f.budgetCount),
      budget_money: f.budgetMoney.trim() === '' ? null : toMinor(f.budgetMoney),
      active: f.active,
    };
    if (f.mode === 'days') body.valid_days = int(f.days);
    else if (f.until) body.valid_until = endOfShopDay(f.until);
    const local =
      (Number.isNaN(body.face_value) || f.face.trim() === '') && { field: 'face_value', message: t('amountNeeded') } ||
      Number.isNaN(body.threshold) && { field: 'threshold', message: t('amountNeeded') } ||
      (f.mode === 'days' && Number.isNaN(body.valid_days) && { field: 'valid_days', message: t('countNeeded') }) ||
      (f.mode === 'until' && !f.until && { field: 'valid_until', message: t('dateNeeded') }) ||
      Number.isNaN(body.per_customer_limit) && { field: 'per_customer_limit', message: t('countNeeded') } ||
      Number.isNaN(body.budget_count) && { field: 'budget_count', message: t('countNeeded') } ||
      Number.isNaN(body.budget_money) && { field: 'budget_money', message: t('amountNeeded') };
    if (local) return setError(local);
    return run(async () => onDone(template ? await put(`/v1/coupon-templates/${template.id}`, body) : await post('/v1/coupon-templates', body)));
  });
  const known = ['name', 'face_value', 'threshold', 'valid_days', 'valid_until', 'per_customer_limit', 'budget_count', 'budget_money'];
  const cur = currentShop()?.currency || 'CNY';
  return (
    <form onSubmit={submit} noValidate class="form-grid" data-testid="template-form">
      {error && !known.includes(error.field) && <ErrorBox error={error} />}
      <InputField label={t('name')} error={error} name="name" value={f.name} onInput={set('name')} required maxLength={100} />
      <InputField label={`${t('faceValue')} (${cur})`} error={error} name="face_value" inputMode="decimal" value={f.face} onInput={set('face')} required />
      <InputField label={`${t('threshold')} (${cur})`} error={error} name="threshold" inputMode="decimal" value={f.threshold} onInput={set('threshold')} />
      <fieldset class="field">
        <legend>{t('validity')}</legend>
        <label class="inline">
          <input type="radio" name="validity" value="days" checked={f.mode === 'days'} onChange={() => setF({ ...f, mode: 'days' })} /> {t('validDaysOpt')}
        </label>
        <label class="inline">
          <input type="radio" name="validity" value="until" checked={f.mode === 'until'} onChange={() => setF({ ...f, mode: 'until' })} /> {t('validUntilOpt')}
        </label>
        {f.mode === 'days' ? (
          <InputField label={t('validDays')} error={error} name="valid_days" inputMode="numeric" value={f.days} onInput={set('days')} />
        ) : (
          <Field label={t('validUntil')} error={errorOn(error, 'valid_until') || errorOn(error, 'valid_days')}>
            {(p) => <input {...p} name="valid_until" type="date" value={f.until} onInput={set('until')} />}
          </Field>
        )}
      </fieldset>
      <InputField label={t('perCustomerLimit')} error={error} name="per_customer_limit" inputMode="numeric" value={f.perCustomer} onInput={set('perCustomer')} />
      <InputField label={t('budgetCount')} error={error} name="budget_count" inputMode="numeric" value={f.budgetCount} onInput={set('budgetCount')} />
      <InputField label={`${t('budgetMoney')} (${cur})`} error={error} name="budget_money" inputMode="decimal" value={f.budgetMoney} onInput={set('budgetMoney')} />
      <FormActions active={f.active} onActive={set('active')} activeLabel={t('activeLabel')} busy={busy} label={template ? t('save') : t('create')} cancel={t('cancel')} onCancel={onCancel} />
    </form>
  );
}

export function Templates() {
  const t = useT(strings);
  const state = useApi('/v1/coupon-templates');
  const manage = can('coupons:manage');
  return (
    <EditableList
      title={t('templates')}
      id="coupon-templates"
      manage={manage}
      newLabel={t('newTemplate')}
      state={state}
      empty={t('none')}
      dialogTitle={(tpl) => (tpl ? t('editTemplate', { name: tpl.name }) : t('newTemplate'))}
      table={(items, edit) => (
        <Table
          rowKey={(r) => r.id}
          rows={items}
          columns={[
            { key: 'name', label: t('name'), render: (r) => <a href={href(`/loyalty/coupons/${r.id}`)}>{r.name}</a> },
            { key: 'terms', label: t('terms'), render: (r) => terms(t, r) },
            { key: 'validity', label: t('validity'), render: (r) => (r.valid_days ? t('days', { n: r.valid_days }) : t('until', { d: date(r.valid_until) })) },
            { key: 'per', label: t('perCustomer'), class: 'num', render: (r) => number(r.per_customer_limit) },
            {
              key: 'budget',
              label: t('budget'),
              render: (r) => (
                <>
                  {r.budget_count !== null ? number(r.budget_count) : t('noLimit')} · {r.budget_money !== null ? money(r.budget_money) : t('noLimit')}
                </>
              ),
            },
            { key: 'issued', label: t('issued'), class: 'num', render: (r) => number(r.issued) },
            { key: 'active', label: t('active'), render: (r) => <span class={`badge ${r.active ? 'good' : ''}`}>{r.active ? t('on') : t('inactive')}</span> },
            {
              key: 'actions',
              label: t('actions'),
              render: (r) => (
                <span class="actions">
                  <a href={href(`/loyalty/coupons/${r.id}`)} aria-label={t('statsOf', { name: r.name })}>
                    {t('stats')}
                  </a>
                  {manage && (
                    <EditButton onClick={() => edit(r)} text={t('edit')} label={t('editOf', { name: r.name })} />
                  )}
                </span>
              ),
            },
          ]}
        />
      )}
      form={(tpl, close, saved) => (
        <TemplateForm
          key={tpl ? tpl.id : 'new'}
          template={tpl}
          onCancel={close}
          onDone={(created) => {
            saved();
            if (!tpl) navigate(`/loyalty/coupons/${created.id}`);
          }}
        />
      )}
    />
  );
}

export function TemplateStats({ id }) {
  const t = useT(strings);
  const tpl = useApi(`/v1/coupon-templates/${id}`);
  const stats = useApi(`/v1/coupon-templates/${id}/stats`);
  return (
    <>
      <p>
        <a href={href('/loyalty/coupons')}>{t('back')}</a>
      </p>
      <Async state={tpl}>
        {(tp) => (
          <>
            <h2 class="page-title" data-testid="template-name">
              {tp.name} <span class={`badge ${tp.active ? 'good' : ''}`}>{tp.active ? t('on') : t('inactive')}</span>
            </h2>
            <p class="muted">
              {terms(t, tp)} · {tp.valid_days ? t('days', { n: tp.valid_days }) : t('until', { d: date(tp.valid_until) })} · {t('perCustomer')} {tp.per_customer_limit}
            </p>
            <Card title={t('stats')} id="template-stats">
              <Async state={stats}>
                {(s) => {
                  const open = Math.max(0, s.issued - s.redeemed - s.expired);
                  return (
                    <>
                      <div class="stats" data-testid="template-stats">
                        <Stat label={t('issued')} value={number(s.issued)} testid="stat-issued" />
                        <Stat label={t('redeemed')} value={number(s.redeemed)} testid="stat-redeemed" />
                        <Stat label={t('expired')} value={number(s.expired)} testid="stat-expired" />
                        <Stat label={t('redemptionRate')} value={percent(s.redemption_rate)} testid="stat-rate" />
                        <Stat label={t('cost')} value={money(s.cost)} testid="stat-cost" />
                        <Stat label={t('revenue')} value={money(s.revenue)} testid="stat-revenue" />
                        <Stat label={t('roi')} value={s.cost > 0 ? number(s.revenue / s.cost, 2) : '—'} />
                        <Stat label={t('countLeft')} value={s.budget_count_left === null ? t('noLimit') : number(s.budget_count_left)} testid="stat-count-left" />
                        <Stat label={t('moneyLeft')} value={s.budget_money_left === null ? t('noLimit') : money(s.budget_money_left)} testid="stat-money-left" />
                      </div>
                      <div class="grid two">
                        <div>
                          <h3>{t('outcome')}</h3>
                          <Bars
                            label={t('outcome')}
                            items={[
                              { label: t('redeemed'), value: s.redeemed, display: number(s.redeemed) },
                              { label: t('expired'), value: s.expired, display: number(s.expired) },
                              { label: t('open'), value: open, display: number(open) },
                            ]}
                          />
                        </div>
                        {(tp.budget_count !== null || tp.budget_money !== null) && (
                          <div>
                            <h3>{t('usage')}</h3>
                            <ul class="bars" aria-label={t('usage')}>
                              {tp.budget_count !== null && (
                                <li>
                                  <span class="bar-label">{t('byCount')}</span>
                                  <progress max={Math.max(1, tp.budget_count)} value={tp.budget_count - (s.budget_count_left ?? 0)} aria-label={t('byCount')} />
                                  <span class="bar-value">{percent(tp.budget_count ? (tp.budget_count - s.budget_count_left) / tp.budget_count : 0)}</span>
                                </li>
                              )}
                              {tp.budget_money !== null && (
                                <li>
                                  <span class="bar-label">{t('byMoney')}</span>
                                  <progress max={Math.max(1, tp.budget_money)} value={tp.budget_money - (s.budget_money_left ?? 0)} aria-label={t('byMoney')} />
                                  <span class="bar-value">{percent(tp.budget_money ? (tp.budget_money - s.budget_money_left) / tp.budget_money : 0)}</span>
                                </li>
                              )}
                            </ul>
                          </div>
                        )}
                      </div>
                    </>
                  );
                }}
              </Async>
            </Card>
          </>
        )}
      </Async>
    </>
  );
}

// Loyalty and coupons: tiers and points (the shop's loyalty-scheme plugin and its configuration,
// the refund policy of /v1/shop/settings/loyalty), the points mall and redemptions, coupon
// templates with budgets and their statistics. Routes: `#/loyalty[/tiers|/rewards|/redemptions|/coupons[/<id>]]`.
import { useState } from 'preact/hooks';
import { put } from '../api.js';
import { useT } from '../i18n.js';
import { href, navigate } from '../router.js';
import { can } from '../session.js';
import { Async, Card, ErrorBox, Table, Tabs, useApi } from '../ui.jsx';
import { money, number } from '../format.js';
import { SchemaForm, cleanMessage, initialValue, shownPath } from './plugins/schema-form.jsx';
import { Templates, TemplateStats } from './loyalty/coupons.jsx';
import { Redemptions, Rewards } from './loyalty/rewards.jsx';
import { oneUnit } from './loyalty/common.jsx';
import './plugins.css';
import './loyalty.css';

const strings = {
  en: {
    title: 'Loyalty & coupons',
    tiers: 'Tiers & points',
    rewards: 'Points mall',
    redemptions: 'Redemptions',
    coupons: 'Coupons',
    sections: 'Loyalty sections',
    scheme: 'Points and tiers: {id}',
    noScheme: 'No loyalty scheme is enabled in this shop: customers earn no points and have no tier.',
    findScheme: 'Find one in the plugin market',
    tiersHidden: 'The tiers and the points rules are the settings of the shop’s loyalty-scheme plugin: roles with the plugins:manage permission (the owner, operators) see and change them. Your role does not; a customer’s own tier and points show on the customer’s profile.',
    tier: 'Tier',
    threshold: 'Qualifying spend (12 months)',
    multiplier: 'Points multiplier',
    noTiers: 'No tier is defined: every customer earns at the base rate.',
    pointsPerUnit: 'Points per {unit} paid',
    expiry: 'Points expire after',
    never: 'never',
    days: '{n} days',
    birthday: 'Birthday bonus',
    reviews: 'Tier review months',
    defaultValue: '{v} (default)',
    edit: 'Edit tiers and points rules',
    save: 'Save',
    cancel: 'Cancel',
    saved: 'Saved.',
    pluginPage: 'Plugin status',
    refunds: 'Refunds',
    refundPolicy: 'When a refund claws back more points than the customer has',
    debt: 'Keep the rest as a points debt, paid off by the next points earned',
    forgive: 'Forgive the rest',
    refundsNeedScope: 'Refund settings need the loyalty:manage permission.',
  },
  'zh-CN': {
    title: '会员与优惠券',
    tiers: '等级与积分',
    rewards: '积分商城',
    redemptions: '兑换记录',
    coupons: '优惠券',
    sections: '会员功能分区',
    scheme: '积分与等级：{id}',
    noScheme: '本店尚未启用积分方案：客户不会获得积分，也没有等级。',
    findScheme: '去插件市场选择一个',
    tiersHidden: '等级和积分规则是店铺积分方案插件的设置：拥有 plugins:manage 权限的角色（店主、运营）可以查看和修改。您的角色无此权限；每位客户自己的等级和积分可在客户详情页查看。',
    tier: '等级',
    threshold: '升级门槛（近 12 个月消费）',
    multiplier: '积分倍数',
    noTiers: '未设置等级：所有客户按基础比例积分。',
    pointsPerUnit: '每消费 {unit} 获得积分',
    expiry: '积分有效期',
    never: '永久有效',
    days: '{n} 天',
    birthday: '生日奖励积分',
    reviews: '等级复核月份',
    defaultValue: '{v}（默认）',
    edit: '编辑等级与积分规则',
    save: '保存',
    cancel: '取消',
    saved: '已保存。',
    pluginPage: '插件状态',
    refunds: '退款',
    refundPolicy: '退款扣回的积分多于客户余额时',
    debt: '差额记为积分欠款，用之后获得的积分抵扣',
    forgive: '免除差额',
    refundsNeedScope: '退款设置需要 loyalty:manage 权限。',
  },
};

const DEFAULTS = { points_per_unit: 1, expiry_days: 365, birthday_bonus: 0, review_months: [1] };

function SchemeCard({ sub }) {
  const t = useT(strings);
  const versions = useApi(`/v1/plugins/${encodeURIComponent(sub.plugin_id)}`);
  const [editing, setEditing] = useState(false);
  const [config, setConfig] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const [current, setCurrent] = useState(sub.config || {});
  const c = current;
  const shown = (k) => (c[k] !== undefined ? c[k] : t('defaultValue', { v: Array.isArray(DEFAULTS[k]) ? DEFAULTS[k].join(', ') : DEFAULTS[k] }));
  const save = async (schema, e) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      const status = await put(`/v1/shop/plugins/${encodeURIComponent(sub.plugin_id)}`, { version: sub.version_req, config, grant: sub.grant, run_every_hours: sub.run_every_hours });
      setCurrent(status.config);
      setEditing(false);
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };
  const tiers = Array.isArray(c.tiers) ? c.tiers : [];
  return (
    <Card
      title={t('scheme', { id: sub.plugin_id })}
      id="loyalty-scheme"
      actions={<a href={href(`/plugins/${encodeURIComponent(sub.plugin_id)}`)}>{t('pluginPage')}</a>}
    >
      {tiers.length ? (
        <Table
          rowKey={(r) => r.name}
          rows={tiers}
          columns={[
            { key: 'name', label: t('tier'), render: (r) => <strong>{r.name}</strong> },
            { key: 'threshold', label: t('threshold'), class: 'num', render: (r) => money(r.threshold) },
            { key: 'multiplier', label: t('multiplier'), class: 'num', render: (r) => `×${number(r.multiplier ?? 1)}` },
          ]}
        />
      ) : (
        <p class="muted">{t('noTiers')}</p>
      )}
      <dl class="facts">
        <dt>{t('pointsPerUnit', { unit: oneUnit() })}</dt>
        <dd>{shown('points_per_unit')}</dd>
        <dt>{t('expiry')}</dt>
        <dd>{c.expiry_days === 0 ? t('never') : c.expiry_days !== undefined ? t('days', { n: c.expiry_days }) : shown('expiry_days')}</dd>
        <dt>{t('birthday')}</dt>
        <dd>{shown('birthday_bonus')}</dd>
        <dt>{t('reviews')}</dt>
        <dd>{Array.isArray(c.review_months) ? c.review_months.join(', ') : shown('review_months')}</dd>
      </dl>
      {saved && (
        <p class="badge good" role="status">
          {t('saved')}
        </p>
      )}
      {!editing && (
        <button
          type="button"
          onClick={() => {
            setConfig(null);
            setError(null);
            setEditing(true);
          }}
        >
          {t('edit')}
        </button>
      )}
      {editing && (
        <Async state={versions}>
          {(data) => {
            const manifest = (data.items.find((p) => p.manifest.version === sub.version) || data.items[data.items.length - 1]).manifest;
            const schema = manifest['config-schema'];
            const value = config || initialValue(schema, current);
            return (
              <form onSubmit={(e) => save(schema, e)} noValidate class="scheme-form" aria-label={t('edit')}>
                {error && !shownPath(schema, 'config', error.field) && <ErrorBox error={{ ...error, message: cleanMessage(error) }} />}
                <SchemaForm schema={schema} value={value} onChange={setConfig} error={error} />
                <div class="actions">
                  <button type="submit" class="primary">
                    {t('save')}
                  </button>
                  <button type="button" onClick={() => setEditing(false)}>
                    {t('cancel')}
                  </button>
                </div>
              </form>
            );
          }}
        </Async>
      )}
    </Card>
  );
}

function Scheme() {
  const t = useT(strings);
  const shop = useApi(can('plugins:manage') ? '/v1/shop/plugins' : null);
  // No route gives the plugin's configuration to a role without plugins:manage: say where the tiers live.
  if (!can('plugins:manage'))
    return (
      <Card title={t('tiers')} id="loyalty-scheme">
        <p class="state empty" data-testid="tiers-hidden">
          {t('tiersHidden')}
        </p>
      </Card>
    );
  return (
    <Async state={shop} isEmpty={() => false}>
      {(data) => {
        const schemes = data.items.filter((s) => s.kind === 'loyalty-scheme' && s.status !== 'disabled');
        if (!schemes.length)
          return (
            <Card title={t('tiers')}>
              <p class="state empty">
                {t('noScheme')} <a href={href('/plugins')}>{t('findScheme')}</a>
              </p>
            </Card>
          );
        return schemes.map((s) => <SchemeCard key={s.plugin_id} sub={s} />);
      }}
    </Async>
  );
}

function RefundPolicy() {
  const t = useT(strings);
  const state = useApi(can('loyalty:manage') ? '/v1/shop/settings/loyalty' : null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  if (!can('loyalty:manage')) return <p class="muted">{t('refundsNeedScope')}</p>;
  const choose = async (policy) => {
    setError(null);
    setSaved(false);
    try {
      await put('/v1/shop/settings/loyalty', { ...state.data, refund_policy: policy });
      state.reload();
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title={t('refunds')} id="refunds">
      <Async state={state} isEmpty={() => false}>
        {(s) => (
          <fieldset class="field">
            <legend>{t('refundPolicy')}</legend>
            {['debt', 'forgive'].map((p) => (
              <label class="inline block">
                <input type="radio" name="refund_policy" value={p} checked={s.refund_policy === p} onChange={() => choose(p)} /> {t(p)}
              </label>
            ))}
            {error && <ErrorBox error={error} />}
            {saved && (
              <span class="badge good" role="status">
                {t('saved')}
              </span>
            )}
          </fieldset>
        )}
      </Async>
    </Card>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  // A role that may change neither lands on the coupons.
  const tab = ['tiers', 'rewards', 'redemptions', 'coupons'].includes(route.parts[0]) ? route.parts[0] : can('plugins:manage') || can('loyalty:manage') ? 'tiers' : 'coupons';
  const tabs = [
    { id: 'tiers', label: t('tiers') },
    { id: 'rewards', label: t('rewards') },
    { id: 'redemptions', label: t('redemptions') },
    { id: 'coupons', label: t('coupons') },
  ];
  return (
    <>
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <Tabs tabs={tabs} active={tab} label={t('sections')} onChange={(id) => navigate(`/loyalty/${id}`)} />
      <div role="tabpanel" aria-label={tabs.find((x) => x.id === tab).label}>
        {tab === 'tiers' && (
          <>
            <Scheme />
            <RefundPolicy />
          </>
        )}
        {tab === 'rewards' && <Rewards />}
        {tab === 'redemptions' && <Redemptions customer={route.query.customer} />}
        {tab === 'coupons' && (route.parts[1] ? <TemplateStats id={route.parts[1]} /> : <Templates />)}
      </div>
    </>
  );
}

// The points mall: rewards (list/create/edit /v1/rewards) and a customer's redemptions
// (/v1/customers/{id}/redemptions), with a redemption on the customer's behalf.
import { useState } from 'preact/hooks';
import { post, put } from '../../api.js';
import { useT } from '../../i18n.js';
import { href, navigate } from '../../router.js';
import { can } from '../../session.js';
import { Async, Card, ErrorBox, Field, Loading, Table, useApi } from '../../ui.jsx';
import { dateTime, money, number } from '../../format.js';
import { errorOn } from '../plugins/schema-form.jsx';
import { CustomerLookup, EditButton, EditableList, FormActions, InputField, useForm, wholeNumber } from './common.jsx';

const strings = {
  en: {
    rewards: 'Points mall',
    newReward: 'New reward',
    editReward: 'Edit {name}',
    none: 'No reward in the points mall yet.',
    noTemplates: 'A reward issues a coupon: create a coupon template first.',
    name: 'Name',
    description: 'Description',
    pointsCost: 'Points',
    coupon: 'Coupon it issues',
    stock: 'Stock (empty: unlimited)',
    stockShort: 'Stock',
    unlimited: 'unlimited',
    redeemed: 'Redeemed',
    active: 'Status',
    activeLabel: 'Active (customers can redeem it)',
    on: 'Active',
    off: 'Inactive',
    actions: 'Actions',
    edit: 'Edit',
    editOf: 'Edit {name}',
    create: 'Create',
    save: 'Save',
    cancel: 'Cancel',
    countNeeded: 'Enter a whole number.',
    choose: 'Choose a coupon template',
    redemptions: 'Redemptions',
    customerId: 'Customer id',
    lookup: 'Show redemptions',
    lookupHint: 'The number in the customer’s profile address, e.g. 42 in #/customers/42.',
    noRedemptions: 'This customer has redeemed nothing yet.',
    enterCustomer: 'Enter a customer id to see what they redeemed.',
    time: 'Time',
    reward: 'Reward',
    points: 'Points spent',
    code: 'Coupon code',
    couponStatus: 'Coupon',
    balanceAfter: 'Balance after',
    profile: 'Open the customer’s profile',
    redeemFor: 'Redeem for this customer',
    redeem: 'Redeem',
    redeemedOk: 'Redeemed: coupon {code}.',
    issued: 'Issued',
    expired: 'Expired',
    noActive: 'No active reward to redeem: activate one in the points mall.',
  },
  'zh-CN': {
    rewards: '积分商城',
    newReward: '新建兑换品',
    editReward: '编辑 {name}',
    none: '积分商城还没有兑换品。',
    noTemplates: '兑换品会发放优惠券：请先创建优惠券模板。',
    name: '名称',
    description: '说明',
    pointsCost: '所需积分',
    coupon: '发放的优惠券',
    stock: '库存（留空为不限）',
    stockShort: '库存',
    unlimited: '不限',
    redeemed: '已兑换',
    active: '状态',
    activeLabel: '上架（客户可兑换）',
    on: '已上架',
    off: '已下架',
    actions: '操作',
    edit: '编辑',
    editOf: '编辑 {name}',
    create: '创建',
    save: '保存',
    cancel: '取消',
    countNeeded: '请输入整数。',
    choose: '选择优惠券模板',
    redemptions: '兑换记录',
    customerId: '客户 ID',
    lookup: '查看兑换记录',
    lookupHint: '客户详情页地址中的数字，例如 #/customers/42 中的 42。',
    noRedemptions: '该客户还没有兑换记录。',
    enterCustomer: '输入客户 ID 查看其兑换记录。',
    time: '时间',
    reward: '兑换品',
    points: '消耗积分',
    code: '券码',
    couponStatus: '优惠券',
    balanceAfter: '兑换后余额',
    profile: '打开客户详情',
    redeemFor: '为该客户兑换',
    redeem: '兑换',
    redeemedOk: '兑换成功：券码 {code}。',
    issued: '未使用',
    expired: '已过期',
    noActive: '没有上架的兑换品可兑换：请先在积分商城上架一个。',
  },
};

function RewardForm({ reward, templates, onDone, onCancel }) {
  const t = useT(strings);
  const { f, set, error, setError, busy, run, onSubmit } = useForm(() => ({
    name: reward ? reward.name : '',
    description: reward && reward.description ? reward.description : '',
    points: reward ? String(reward.points_cost) : '',
    template: reward ? String(reward.coupon_template_id) : templates.length ? String(templates[0].id) : '',
    stock: reward && reward.stock !== null ? String(reward.stock) : '',
    active: reward ? reward.active : true,
  }));
  const int = wholeNumber;
  const submit = onSubmit(() => {
    const body = {
      name: f.name.trim(),
      description: f.description.trim() || null,
      points_cost: int(f.points),
      coupon_template_id: Number(f.template),
      stock: f.stock.trim() === '' ? null : int(f.stock),
      active: f.active,
    };
    if (Number.isNaN(body.points_cost)) return setError({ field: 'points_cost', message: t('countNeeded') });
    if (Number.isNaN(body.stock)) return setError({ field: 'stock', message: t('countNeeded') });
    return run(async () => onDone(reward ? await put(`/v1/rewards/${reward.id}`, body) : await post('/v1/rewards', body)));
  });
  const known = ['name', 'description', 'points_cost', 'coupon_template_id', 'stock'];
  return (
    <form onSubmit={submit} noValidate class="form-grid" data-testid="reward-form">
      {error && !known.includes(error.field) && <ErrorBox error={error} />}
      <InputField label={t('name')} error={error} name="name" value={f.name} onInput={set('name')} maxLength={100} required />
      <Field label={t('description')} error={errorOn(error, 'description')}>
        {(p) => <textarea {...p} name="description" rows={2} value={f.description} onInput={set('description')} />}
      </Field>
      <InputField label={t('pointsCost')} error={error} name="points_cost" inputMode="numeric" value={f.points} onInput={set('points')} required />
      <Field label={t('coupon')} error={errorOn(error, 'coupon_template_id')}>
        {(p) => (
          <select {...p} name="coupon_template_id" value={f.template} onChange={set('template')}>
            {!f.template && <option value="">{t('choose')}</option>}
            {templates.map((tp) => (
              <option value={String(tp.id)}>
                {tp.name} ({money(tp.face_value)})
              </option>
            ))}
          </select>
        )}
      </Field>
      <InputField label={t('stock')} error={error} name="stock" inputMode="numeric" value={f.stock} onInput={set('stock')} />
      <FormActions active={f.active} onActive={set('active')} activeLabel={t('activeLabel')} busy={busy} label={reward ? t('save') : t('create')} cancel={t('cancel')} onCancel={onCancel} />
    </form>
  );
}

export function Rewards() {
  const t = useT(strings);
  const state = useApi('/v1/rewards');
  const templates = useApi('/v1/coupon-templates');
  const manage = can('loyalty:manage');
  const list = (templates.data && templates.data.items) || [];
  const byId = new Map(list.map((tp) => [tp.id, tp]));
  return (
    <EditableList
      title={t('rewards')}
      id="rewards"
      manage={manage}
      newLabel={t('newReward')}
      newDisabled={!templates.data}
      state={state}
      empty={t('none')}
      dialogTitle={(reward) => (reward ? t('editReward', { name: reward.name }) : t('newReward'))}
      table={(items, edit) => (
        <Table
          rowKey={(r) => r.id}
          rows={items}
          columns={[
            {
              key: 'name',
              label: t('name'),
              render: (r) => (
                <>
                  <strong>{r.name}</strong>
                  {r.description && <div class="muted small">{r.description}</div>}
                </>
              ),
            },
            { key: 'points_cost', label: t('pointsCost'), class: 'num', render: (r) => number(r.points_cost) },
            {
              key: 'coupon',
              label: t('coupon'),
              render: (r) => {
                const tp = byId.get(r.coupon_template_id);
                return <a href={href(`/loyalty/coupons/${r.coupon_template_id}`)}>{tp ? `${tp.name} (${money(tp.face_value)})` : `#${r.coupon_template_id}`}</a>;
              },
            },
            { key: 'stock', label: t('stockShort'), class: 'num', render: (r) => (r.stock === null ? t('unlimited') : number(r.stock)) },
            { key: 'redeemed', label: t('redeemed'), class: 'num', render: (r) => number(r.redeemed) },
            { key: 'active', label: t('active'), render: (r) => <span class={`badge ${r.active ? 'good' : ''}`}>{r.active ? t('on') : t('off')}</span> },
            ...(manage
              ? [
                  {
                    key: 'actions',
                    label: t('actions'),
                    render: (r) => (
                      <EditButton onClick={() => edit(r)} text={t('edit')} label={t('editOf', { name: r.name })} />
                    ),
                  },
                ]
              : []),
          ]}
        />
      )}
      form={(reward, close, saved) => <RewardForm key={reward ? reward.id : 'new'} reward={reward} templates={list} onCancel={close} onDone={saved} />}
    >
      {templates.error && <ErrorBox error={templates.error} onRetry={templates.reload} />}
      {templates.data && list.length === 0 && <p class="muted">{t('noTemplates')}</p>}
    </EditableList>
  );
}

function RedeemFor({ customer, onDone }) {
  const t = useT(strings);
  const rewards = useApi('/v1/rewards');
  const { f, set, error, busy, run } = useForm({ reward: '' });
  const [done, setDone] = useState(null);
  // A failed load says so (with a retry) rather than hiding the form.
  if (rewards.error) return <ErrorBox error={rewards.error} onRetry={rewards.reload} />;
  if (rewards.data === undefined) return rewards.loading ? <Loading /> : null;
  const active = rewards.data.items.filter((r) => r.active);
  if (!active.length) return <p class="muted">{t('noActive')}</p>;
  const chosen = f.reward || String(active[0].id);
  const submit = async (e) => {
    e.preventDefault();
    setDone(null);
    const key = `console-${typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`}`;
    await run(async () => {
      setDone(await post(`/v1/customers/${customer}/redemptions`, { reward_id: Number(chosen), idempotency_key: key }));
      onDone();
    });
  };
  return (
    <form class="toolbar" onSubmit={submit} aria-label={t('redeemFor')}>
      <Field label={t('redeemFor')} error={errorOn(error, 'reward_id')}>
        {(p) => (
          <select {...p} value={chosen} onChange={set('reward')}>
            {active.map((r) => (
              <option value={String(r.id)}>
                {r.name} · {number(r.points_cost)}
              </option>
            ))}
          </select>
        )}
      </Field>
      <button type="submit" disabled={busy}>
        {t('redeem')}
      </button>
      {error && error.field !== 'reward_id' && <ErrorBox error={error} />}
      {done && (
        <span class="badge good" role="status">
          {t('redeemedOk', { code: done.coupon.code })}
        </span>
      )}
    </form>
  );
}

export function Redemptions({ customer }) {
  const t = useT(strings);
  const [text, setText] = useState(customer || '');
  const id = customer && /^\d+$/.test(customer) ? customer : null;
  const state = useApi(id ? `/v1/customers/${id}/redemptions` : null);
  const rewards = useApi('/v1/rewards');
  const names = new Map(((rewards.data && rewards.data.items) || []).map((r) => [r.id, r.name]));
  const words = { issued: t('issued'), redeemed: t('redeemed'), expired: t('expired') };
  return (
    <Card title={t('redemptions')} id="redemptions">
      <CustomerLookup
        value={text}
        onInput={setText}
        onSubmit={(customer) => navigate('/loyalty/redemptions', { customer })}
        button={t('lookup')}
        hint={t('lookupHint')}
        prompt={t('enterCustomer')}
        id={id}
      >
          {can('loyalty:redeem') && <RedeemFor customer={id} onDone={state.reload} />}
          <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noRedemptions')}>
            {(data) => (
              <Table
                rowKey={(r) => r.id}
                rows={data.items}
                columns={[
                  { key: 'created_at', label: t('time'), render: (r) => dateTime(r.created_at) },
                  { key: 'reward', label: t('reward'), render: (r) => names.get(r.reward_id) || `#${r.reward_id}` },
                  { key: 'points', label: t('points'), class: 'num', render: (r) => number(r.points) },
                  { key: 'code', label: t('code'), render: (r) => <span class="mono">{r.coupon.code}</span> },
                  { key: 'coupon', label: t('couponStatus'), render: (r) => `${money(r.coupon.face_value)} · ${words[r.coupon.status] || r.coupon.status}` },
                  { key: 'balance_after', label: t('balanceAfter'), class: 'num', render: (r) => number(r.balance_after) },
                ]}
              />
            )}
          </Async>
      </CustomerLookup>
    </Card>
  );
}

// The visual builder over the segment language (kernel/domain/src/segments.rs): a tree of
// `and` / `or` groups, `not`, and condition rows, each with the pickers its kind needs. The
// definition stays the JSON the API takes; every node knows its path (`definition.and[1]`), so
// an API error naming `definition.and[1].op` lands on that row, on that control.
import { useEffect, useRef, useState } from 'preact/hooks';
import { post } from '../../api.js';
import { useApi } from '../../ui.jsx';
import { currentLocale, currentShop } from '../../session.js';
import { useT } from '../../i18n.js';
import { number, toMajor, toMinor } from '../../format.js';
import './builder.css';

export const strings = {
  en: {
    all: 'All of',
    any: 'Any of',
    groupOp: 'Combine with',
    addCondition: '+ Condition',
    addGroup: '+ Group',
    remove: 'Remove',
    removeCondition: 'Remove condition {n} ({kind})',
    removeGroup: 'Remove group {n} ({op})',
    exclude: 'Exclude (NOT)',
    not: 'NOT',
    kind: 'Condition',
    k_purchase: 'Purchased',
    k_behaviour: 'Behaviour',
    k_profile: 'Profile',
    k_tier: 'Member tier',
    k_attribute: 'Attribute',
    k_tag: 'Tag',
    k_stat: 'Statistic',
    k_points: 'Points balance',
    k_score: 'Score',
    k_segment: 'In segment',
    field: 'Field',
    op: 'Operator',
    value: 'Value',
    valueFrom: 'From',
    valueTo: 'To',
    listHint: 'comma-separated',
    days: 'days',
    itemAny: 'any product',
    itemSku: 'SKU',
    itemCategory: 'category',
    item: 'Product',
    itemValue: 'SKU or category',
    windowKind: 'Window',
    lastDays: 'in the last',
    between: 'between',
    windowDays: 'Days',
    windowFrom: 'From date',
    windowTo: 'To date',
    atLeast: 'min. times',
    atMost: 'max. times',
    spentAtLeast: 'min. spent',
    attrKey: 'Attribute name',
    tagName: 'Tag',
    tagSource: 'Source (optional)',
    has: 'has',
    hasNot: 'has not',
    tagHas: 'Has the tag',
    stat: 'Statistic',
    model: 'Score model',
    scoreTest: 'Test',
    st_any: 'has a score',
    st_label: 'label is',
    st_op: 'value',
    st_top: 'top %',
    st_bottom: 'bottom %',
    labels: 'Labels',
    percent: 'Percent',
    segment: 'Segment',
    trueV: 'yes',
    falseV: 'no',
    liveCount: 'Matching now',
    counting: 'Counting…',
    customers: '{n} customers',
    rawJson: 'JSON',
    visual: 'Builder',
    view: 'View',
    badJson: 'Not valid JSON: {m}',
    empty: 'No condition: add one.',
    f_name: 'Name',
    f_gender: 'Gender',
    f_province: 'Province',
    f_city: 'City',
    f_tier: 'Tier',
    f_birthday: 'Birthday',
    f_created_at: 'Created',
    s_total_spent: 'Total spent',
    s_order_count: 'Orders',
    s_aov: 'Average order value',
    s_days_since_first_order: 'Days since first order',
    s_days_since_last_order: 'Days since last order',
    s_refund_count: 'Refunds',
    s_refund_amount: 'Refunded amount',
    s_points: 'Points balance',
    b_view: 'viewed',
    b_favorite: 'favorited',
    b_cart: 'added to cart',
    b_purchase: 'purchased',
    o_eq: '=',
    o_ne: '≠',
    o_lt: '<',
    o_lte: '≤',
    o_gt: '>',
    o_gte: '≥',
    o_between: 'between',
    o_in: 'one of',
    o_contains: 'contains',
    o_exists: 'is set',
    o_within_last_days: 'within the last days',
    o_within_next_days: 'within the next days',
    sample: 'Sample',
  },
  'zh-CN': {
    all: '满足全部',
    any: '满足任一',
    groupOp: '组合方式',
    addCondition: '+ 条件',
    addGroup: '+ 条件组',
    remove: '删除',
    removeCondition: '删除第 {n} 个条件（{kind}）',
    removeGroup: '删除第 {n} 个条件组（{op}）',
    exclude: '排除（非）',
    not: '非',
    kind: '条件类型',
    k_purchase: '购买过',
    k_behaviour: '行为',
    k_profile: '基本属性',
    k_tier: '会员等级',
    k_attribute: '自定义属性',
    k_tag: '标签',
    k_stat: '消费统计',
    k_points: '积分余额',
    k_score: '模型评分',
    k_segment: '属于人群',
    field: '字段',
    op: '运算符',
    value: '值',
    valueFrom: '从',
    valueTo: '到',
    listHint: '用逗号分隔',
    days: '天',
    itemAny: '任意商品',
    itemSku: '商品 SKU',
    itemCategory: '类目',
    item: '商品',
    itemValue: 'SKU 或类目',
    windowKind: '时间窗口',
    lastDays: '最近',
    between: '日期区间',
    windowDays: '天数',
    windowFrom: '开始日期',
    windowTo: '结束日期',
    atLeast: '最少次数',
    atMost: '最多次数',
    spentAtLeast: '最低消费',
    attrKey: '属性名',
    tagName: '标签',
    tagSource: '来源（可选）',
    has: '有',
    hasNot: '没有',
    tagHas: '是否有该标签',
    stat: '统计项',
    model: '评分模型',
    scoreTest: '判断',
    st_any: '有评分',
    st_label: '分层为',
    st_op: '分值',
    st_top: '前 %',
    st_bottom: '后 %',
    labels: '分层',
    percent: '百分比',
    segment: '人群',
    trueV: '是',
    falseV: '否',
    liveCount: '当前匹配',
    counting: '计算中…',
    customers: '{n} 位客户',
    rawJson: 'JSON',
    visual: '可视化',
    view: '视图',
    badJson: 'JSON 格式错误：{m}',
    empty: '暂无条件，请添加。',
    f_name: '姓名',
    f_gender: '性别',
    f_province: '省份',
    f_city: '城市',
    f_tier: '等级',
    f_birthday: '生日',
    f_created_at: '创建时间',
    s_total_spent: '累计消费',
    s_order_count: '订单数',
    s_aov: '客单价',
    s_days_since_first_order: '距首单天数',
    s_days_since_last_order: '距最近一单天数',
    s_refund_count: '退款次数',
    s_refund_amount: '退款金额',
    s_points: '积分余额',
    b_view: '浏览',
    b_favorite: '收藏',
    b_cart: '加购',
    b_purchase: '购买',
    o_eq: '等于',
    o_ne: '不等于',
    o_lt: '小于',
    o_lte: '小于等于',
    o_gt: '大于',
    o_gte: '大于等于',
    o_between: '介于',
    o_in: '属于其一',
    o_contains: '包含',
    o_exists: '已填写',
    o_within_last_days: '最近若干天内',
    o_within_next_days: '未来若干天内',
    sample: '样本',
  },
};

export const CATEGORIES = ['beauty', 'apparel', 'food', 'home', 'baby', 'digital'];
const PROFILE_FIELDS = ['name', 'gender', 'province', 'city', 'tier', 'birthday', 'created_at'];
const STATS = ['total_spent', 'order_count', 'aov', 'days_since_first_order', 'days_since_last_order', 'refund_count', 'refund_amount', 'points'];
const MONEY_STATS = ['total_spent', 'aov', 'refund_amount'];
const BEHAVIOURS = ['view', 'favorite', 'cart', 'purchase'];
const KINDS = ['purchase', 'behaviour', 'profile', 'tier', 'attribute', 'tag', 'stat', 'points', 'score', 'segment'];
const OPS = {
  text: ['eq', 'ne', 'in', 'contains', 'exists'],
  number: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'exists'],
  birthday: ['eq', 'lt', 'lte', 'gt', 'gte', 'between', 'exists', 'within_last_days', 'within_next_days'],
  instant: ['lt', 'lte', 'gt', 'gte', 'between', 'exists', 'within_last_days'],
  any: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'contains', 'exists'],
};

const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
export const isGroup = (n) => isObj(n) && (Array.isArray(n.and) || Array.isArray(n.or));
export const isNot = (n) => isObj(n) && 'not' in n;

/** The kind of a condition row, as the kind picker shows it. */
export function kindOf(c) {
  if (!isObj(c)) return 'purchase';
  if ('purchase' in c) return 'purchase';
  if ('behaviour' in c) return 'behaviour';
  if ('profile' in c) return c.profile === 'tier' ? 'tier' : 'profile';
  if ('attribute' in c) return 'attribute';
  if ('tag' in c) return 'tag';
  if ('stat' in c) return c.stat === 'points' ? 'points' : 'stat';
  if ('score' in c) return 'score';
  if ('segment' in c) return 'segment';
  return 'purchase';
}

export function newCondition(kind, ctx = {}) {
  switch (kind) {
    case 'behaviour':
      return { behaviour: 'view', window: { last_days: 30 } };
    case 'profile':
      return { profile: 'city', op: 'eq', value: '' };
    case 'tier':
      return { profile: 'tier', op: 'eq', value: '' };
    case 'attribute':
      return { attribute: '', op: 'eq', value: '' };
    case 'tag':
      return { tag: '' };
    case 'stat':
      return { stat: 'total_spent', op: 'gte', value: 0 };
    case 'points':
      return { stat: 'points', op: 'gte', value: 100 };
    case 'score':
      return { score: 'rfm' };
    case 'segment':
      return { segment: ctx.segments && ctx.segments[0] ? ctx.segments[0].id : 0 };
    default:
      return { purchase: {}, window: { last_days: 30 } };
  }
}

/** Values of `key` (`sku`, `tag`) named anywhere in these definitions (for the pickers). */
export function knownValues(definitions, key) {
  const out = new Set();
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k === key && typeof x === 'string' && x) out.add(x);
        else walk(x);
      }
    }
  };
  definitions.forEach(walk);
  return [...out].sort();
}
export const knownSkus = (definitions) => knownValues(definitions, 'sku');

/** A score label `code|中文|English` in the console's language. */
function labelName(label, code) {
  const parts = String(label || code).split('|');
  if (parts.length < 3) return parts[0];
  return currentLocale() === 'zh-CN' ? parts[1] : parts[2];
}

/** The label codes of a model, with how many customers hold each, as checkboxes. */
function ScoreLabels({ model, labels, onChange, bad, t }) {
  const state = useApi(model ? `/v1/metrics/scores/${encodeURIComponent(model)}` : null);
  const known = state.data && Array.isArray(state.data.labels) ? state.data.labels : [];
  if (!known.length) {
    return (
      <input
        aria-label={`${t('labels')} (${t('listHint')})`}
        placeholder={t('listHint')}
        aria-invalid={bad === 'label' ? 'true' : undefined}
        value={labels.join(', ')}
        onChange={(e) => onChange(splitList(e.currentTarget.value))}
      />
    );
  }
  const codes = [...known.map((l) => l.code), ...labels.filter((c) => !known.some((l) => l.code === c))];
  return (
    <span class={`seg-labels ${bad === 'label' ? 'bad' : ''}`} role="group" aria-label={t('labels')}>
      {codes.map((code) => {
        const l = known.find((x) => x.code === code);
        return (
          <label class="seg-label">
            <input type="checkbox" checked={labels.includes(code)} onChange={(e) => onChange(e.currentTarget.checked ? [...labels, code] : labels.filter((c) => c !== code))} />
            {l ? labelName(l.label, code) : code}
            {l && <span class="muted"> ({l.customers})</span>}
          </label>
        );
      })}
    </span>
  );
}

/** The API's message without the `field: ` it starts with. */
export function errorText(err) {
  if (!err) return '';
  const m = err.message || '';
  return err.field && m.startsWith(`${err.field}: `) ? m.slice(err.field.length + 2) : m;
}

/**
 * The part of the error's field under `path` when this node (not one of its children) is at
 * fault: `''` for the node itself, `.op`, `.window.last_days` …; null otherwise.
 */
export function ownError(err, path) {
  if (!err || !err.field) return null;
  const f = err.field;
  if (f !== path && !f.startsWith(`${path}.`) && !f.startsWith(`${path}[`)) return null;
  const rest = f.slice(path.length);
  if (/^\.(and|or)\[\d+\]/.test(rest) || rest.startsWith('.not')) return null;
  return rest;
}

function controlOf(rest) {
  if (rest === null) return null;
  const m = /^\.?([a-z_]+)/.exec(rest);
  if (!m) return '';
  if (m[1] === 'purchase') return 'item';
  if (m[1] === 'sku' || m[1] === 'category') return 'item';
  return m[1];
}

function numOrRaw(text, money) {
  const s = String(text).trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return money ? toMinor(s) : Number(s);
  return s;
}
function showNum(v, money) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' && money) return toMajor(v);
  return String(v);
}
function anyValue(text) {
  const s = String(text);
  if (/^-?\d+(\.\d+)?$/.test(s.trim())) return Number(s.trim());
  if (s === 'true') return true;
  if (s === 'false') return false;
  return s;
}
const splitList = (s) => String(s).split(/[,，]/).map((x) => x.trim()).filter(Boolean);

// ————————————————————————————————————————————— op and value

function TestEditor({ c, onChange, valueKind, money, bad, t, datalist }) {
  const ops = OPS[valueKind];
  const op = ops.includes(c.op) ? c.op : c.op || ops[0];
  const conv = (s) => (valueKind === 'number' ? numOrRaw(s, money) : valueKind === 'any' ? anyValue(s) : s);
  const show = (v) => (valueKind === 'number' ? showNum(v, money) : v === undefined || v === null ? '' : String(v));
  const inputType = valueKind === 'birthday' || valueKind === 'instant' ? 'date' : 'text';
  const setOp = (next) => {
    let value = c.value;
    if (next === 'exists') value = true;
    else if (next === 'within_last_days' || next === 'within_next_days') value = 30;
    else if (next === 'between') value = Array.isArray(c.value) && c.value.length === 2 ? c.value : ['', ''];
    else if (next === 'in') value = Array.isArray(c.value) ? c.value : c.value === '' || c.value === undefined || typeof c.value === 'boolean' ? [] : [c.value];
    else if (Array.isArray(c.value) || typeof c.value === 'boolean') value = valueKind === 'number' ? 0 : '';
    onChange({ ...c, op: next, value });
  };
  const inv = (name) => (bad === name ? 'true' : undefined);
  let valueInput;
  if (op === 'exists') {
    valueInput = (
      <select aria-label={t('value')} aria-invalid={inv('value')} value={String(c.value !== false)} onChange={(e) => onChange({ ...c, value: e.currentTarget.value === 'true' })}>
        <option value="true">{t('trueV')}</option>
        <option value="false">{t('falseV')}</option>
      </select>
    );
  } else if (op === 'within_last_days' || op === 'within_next_days') {
    valueInput = (
      <span class="seg-inline">
        <input class="num" aria-label={`${t('value')} (${t('days')})`} aria-invalid={inv('value')} inputMode="numeric" value={show(c.value)} onInput={(e) => onChange({ ...c, value: numOrRaw(e.currentTarget.value) })} />
        {t('days')}
      </span>
    );
  } else if (op === 'between') {
    const pair = Array.isArray(c.value) ? c.value : ['', ''];
    valueInput = (
      <span class="seg-inline">
        <input type={inputType} class="num" aria-label={t('valueFrom')} aria-invalid={inv('value')} value={show(pair[0])} onInput={(e) => onChange({ ...c, value: [conv(e.currentTarget.value), pair[1]] })} />
        –
        <input type={inputType} class="num" aria-label={t('valueTo')} aria-invalid={inv('value')} value={show(pair[1])} onInput={(e) => onChange({ ...c, value: [pair[0], conv(e.currentTarget.value)] })} />
      </span>
    );
  } else if (op === 'in') {
    const list = Array.isArray(c.value) ? c.value : [];
    valueInput = (
      <input
        aria-label={`${t('value')} (${t('listHint')})`}
        aria-invalid={inv('value')}
        placeholder={t('listHint')}
        value={list.map(show).join(', ')}
        onChange={(e) => onChange({ ...c, value: splitList(e.currentTarget.value).map(conv) })}
      />
    );
  } else {
    valueInput = (
      <input
        type={inputType}
        class={valueKind === 'number' ? 'num' : undefined}
        aria-label={t('value')}
        aria-invalid={inv('value')}
        list={datalist}
        inputMode={valueKind === 'number' ? 'decimal' : undefined}
        value={show(c.value)}
        onInput={(e) => onChange({ ...c, value: conv(e.currentTarget.value) })}
      />
    );
  }
  return (
    <>
      <select aria-label={t('op')} aria-invalid={inv('op')} value={op} onChange={(e) => setOp(e.currentTarget.value)}>
        {ops.map((o) => (
          <option value={o}>{t(`o_${o}`)}</option>
        ))}
        {!ops.includes(op) && <option value={op}>{op}</option>}
      </select>
      {valueInput}
      {money && op !== 'exists' && <span class="muted">{currencySymbol()}</span>}
    </>
  );
}

function WindowEditor({ w, onChange, bad, t }) {
  const between = isObj(w) && Array.isArray(w.between);
  const inv = bad === 'window' ? 'true' : undefined;
  return (
    <span class="seg-inline">
      <select aria-label={t('windowKind')} aria-invalid={inv} value={between ? 'between' : 'last'} onChange={(e) => onChange(e.currentTarget.value === 'between' ? { between: ['', ''] } : { last_days: 30 })}>
        <option value="last">{t('lastDays')}</option>
        <option value="between">{t('between')}</option>
      </select>
      {between ? (
        <>
          <input type="date" aria-label={t('windowFrom')} aria-invalid={inv} value={w.between[0]} onInput={(e) => onChange({ between: [e.currentTarget.value, w.between[1]] })} />
          –
          <input type="date" aria-label={t('windowTo')} aria-invalid={inv} value={w.between[1]} onInput={(e) => onChange({ between: [w.between[0], e.currentTarget.value] })} />
        </>
      ) : (
        <>
          <input class="num" aria-label={t('windowDays')} aria-invalid={inv} inputMode="numeric" value={isObj(w) ? showNum(w.last_days) : ''} onInput={(e) => onChange({ last_days: numOrRaw(e.currentTarget.value) })} />
          {t('days')}
        </>
      )}
    </span>
  );
}

function ItemEditor({ item, onChange, bad, t, skuList, catList }) {
  const mode = item.sku !== undefined ? 'sku' : item.category !== undefined ? 'category' : 'any';
  const inv = bad === 'item' ? 'true' : undefined;
  return (
    <span class="seg-inline">
      <select aria-label={t('item')} aria-invalid={inv} value={mode} onChange={(e) => { const m = e.currentTarget.value; onChange(m === 'any' ? {} : { [m]: '' }); }}>
        <option value="any">{t('itemAny')}</option>
        <option value="sku">{t('itemSku')}</option>
        <option value="category">{t('itemCategory')}</option>
      </select>
      {mode !== 'any' && (
        <input
          aria-label={mode === 'sku' ? t('itemSku') : t('itemCategory')}
          aria-invalid={inv}
          list={mode === 'sku' ? skuList : catList}
          value={item[mode]}
          onInput={(e) => onChange({ [mode]: e.currentTarget.value })}
        />
      )}
    </span>
  );
}

function CountEditor({ c, onChange, bad, t }) {
  const set = (key, text) => {
    const next = { ...c };
    if (String(text).trim() === '') delete next[key];
    else next[key] = numOrRaw(text);
    onChange(next);
  };
  return (
    <>
      <input class="num" aria-label={t('atLeast')} placeholder={t('atLeast')} aria-invalid={bad === 'at_least' ? 'true' : undefined} inputMode="numeric" value={showNum(c.at_least)} onInput={(e) => set('at_least', e.currentTarget.value)} />
      <input class="num" aria-label={t('atMost')} placeholder={t('atMost')} aria-invalid={bad === 'at_most' ? 'true' : undefined} inputMode="numeric" value={showNum(c.at_most)} onInput={(e) => set('at_most', e.currentTarget.value)} />
    </>
  );
}

function ConditionEditor({ c, onChange, bad, t, ctx }) {
  const kind = kindOf(c);
  const inv = (name) => (bad === name ? 'true' : undefined);
  switch (kind) {
    case 'purchase':
      return (
        <>
          <ItemEditor item={isObj(c.purchase) ? c.purchase : {}} onChange={(purchase) => onChange({ ...c, purchase })} bad={bad} t={t} skuList={ctx.skuList} catList={ctx.catList} />
          <WindowEditor w={c.window} onChange={(window) => onChange({ ...c, window })} bad={bad} t={t} />
          <CountEditor c={c} onChange={onChange} bad={bad} t={t} />
          <input
            class="num"
            aria-label={t('spentAtLeast')}
            placeholder={t('spentAtLeast')}
            aria-invalid={inv('spent_at_least')}
            inputMode="decimal"
            value={showNum(c.spent_at_least, true)}
            onInput={(e) => {
              const next = { ...c };
              if (e.currentTarget.value.trim() === '') delete next.spent_at_least;
              else next.spent_at_least = numOrRaw(e.currentTarget.value, true);
              onChange(next);
            }}
          />
        </>
      );
    case 'behaviour': {
      const { sku, category, ...rest } = c;
      const item = sku !== undefined ? { sku } : category !== undefined ? { category } : {};
      return (
        <>
          <select aria-label={t('k_behaviour')} aria-invalid={inv('behaviour')} value={c.behaviour} onChange={(e) => onChange({ ...c, behaviour: e.currentTarget.value })}>
            {BEHAVIOURS.map((b) => (
              <option value={b}>{t(`b_${b}`)}</option>
            ))}
          </select>
          <ItemEditor item={item} onChange={(it) => onChange({ ...rest, ...it })} bad={bad} t={t} skuList={ctx.skuList} catList={ctx.catList} />
          <WindowEditor w={c.window} onChange={(window) => onChange({ ...c, window })} bad={bad} t={t} />
          <CountEditor c={c} onChange={onChange} bad={bad} t={t} />
        </>
      );
    }
    case 'profile':
    case 'tier': {
      const vk = c.profile === 'birthday' ? 'birthday' : c.profile === 'created_at' ? 'instant' : 'text';
      return (
        <>
          <select
            aria-label={t('field')}
            aria-invalid={inv('profile')}
            value={c.profile}
            onChange={(e) => {
              const p = e.currentTarget.value;
              const nk = p === 'birthday' ? 'birthday' : p === 'created_at' ? 'instant' : 'text';
              onChange(nk === vk ? { ...c, profile: p } : { profile: p, op: 'exists', value: true });
            }}
          >
            {PROFILE_FIELDS.map((f) => (
              <option value={f}>{t(`f_${f}`)}</option>
            ))}
          </select>
          <TestEditor c={c} onChange={onChange} valueKind={vk} bad={bad} t={t} />
        </>
      );
    }
    case 'attribute':
      return (
        <>
          <input aria-label={t('attrKey')} placeholder={t('attrKey')} aria-invalid={inv('attribute')} value={c.attribute} onInput={(e) => onChange({ ...c, attribute: e.currentTarget.value })} />
          <TestEditor c={c} onChange={onChange} valueKind="any" bad={bad} t={t} />
        </>
      );
    case 'tag':
      return (
        <>
          <select aria-label={t('tagHas')} aria-invalid={inv('has')} value={String(c.has !== false)} onChange={(e) => { const next = { ...c }; if (e.currentTarget.value === 'true') delete next.has; else next.has = false; onChange(next); }}>
            <option value="true">{t('has')}</option>
            <option value="false">{t('hasNot')}</option>
          </select>
          <input aria-label={t('tagName')} placeholder={t('tagName')} aria-invalid={inv('tag')} list={ctx.tagList} value={c.tag} onInput={(e) => onChange({ ...c, tag: e.currentTarget.value })} />
          <input
            aria-label={t('tagSource')}
            placeholder={t('tagSource')}
            aria-invalid={inv('source')}
            value={c.source || ''}
            onInput={(e) => {
              const next = { ...c };
              if (e.currentTarget.value === '') delete next.source;
              else next.source = e.currentTarget.value;
              onChange(next);
            }}
          />
        </>
      );
    case 'stat':
    case 'points':
      return (
        <>
          <select aria-label={t('stat')} aria-invalid={inv('stat')} value={c.stat} onChange={(e) => onChange({ ...c, stat: e.currentTarget.value })}>
            {STATS.map((s) => (
              <option value={s}>{t(`s_${s}`)}</option>
            ))}
          </select>
          <TestEditor c={c} onChange={onChange} valueKind="number" money={MONEY_STATS.includes(c.stat)} bad={bad} t={t} />
        </>
      );
    case 'score': {
      const test = 'label' in c ? 'label' : 'op' in c ? 'op' : 'top_percent' in c ? 'top' : 'bottom_percent' in c ? 'bottom' : 'any';
      const base = { score: c.score };
      const setTest = (k) =>
        onChange(k === 'label' ? { ...base, label: [] } : k === 'op' ? { ...base, op: 'gte', value: 0 } : k === 'top' ? { ...base, top_percent: 10 } : k === 'bottom' ? { ...base, bottom_percent: 10 } : base);
      const labels = Array.isArray(c.label) ? c.label : c.label ? [c.label] : [];
      return (
        <>
          <input aria-label={t('model')} placeholder={t('model')} aria-invalid={inv('score')} list={ctx.modelList} value={c.score} onInput={(e) => onChange({ ...c, score: e.currentTarget.value })} />
          <select aria-label={t('scoreTest')} value={test} onChange={(e) => setTest(e.currentTarget.value)}>
            {['any', 'label', 'op', 'top', 'bottom'].map((k) => (
              <option value={k}>{t(`st_${k}`)}</option>
            ))}
          </select>
          {test === 'label' && <ScoreLabels model={c.score} labels={labels} bad={bad} t={t} onChange={(label) => onChange({ ...base, label })} />}
          {test === 'op' && <TestEditor c={c} onChange={onChange} valueKind="number" bad={bad} t={t} />}
          {(test === 'top' || test === 'bottom') && (
            <input
              class="num"
              aria-label={t('percent')}
              aria-invalid={inv(test === 'top' ? 'top_percent' : 'bottom_percent')}
              inputMode="numeric"
              value={showNum(c[test === 'top' ? 'top_percent' : 'bottom_percent'])}
              onInput={(e) => onChange({ ...base, [test === 'top' ? 'top_percent' : 'bottom_percent']: numOrRaw(e.currentTarget.value) })}
            />
          )}
        </>
      );
    }
    case 'segment':
      return (
        <select aria-label={t('segment')} aria-invalid={inv('segment')} value={String(c.segment)} onChange={(e) => onChange({ segment: Number(e.currentTarget.value) })}>
          {!(ctx.segments || []).some((s) => s.id === c.segment) && <option value={String(c.segment)}>#{c.segment}</option>}
          {(ctx.segments || []).map((s) => (
            <option value={String(s.id)}>
              #{s.id} {s.name}
            </option>
          ))}
        </select>
      );
    default:
      return null;
  }
}

// ————————————————————————————————————————————— the tree

/** A node's place among its siblings, from 1 (`definition.and[1].not` → 2), for screen readers. */
function position(path) {
  const m = /\[(\d+)\](?:\.not)*$/.exec(path);
  return m ? Number(m[1]) + 1 : 1;
}

/** The shop's currency sign (`¥`), beside money inputs. */
function currencySymbol() {
  const currency = currentShop()?.currency || 'CNY';
  try {
    const part = new Intl.NumberFormat(currentLocale(), { style: 'currency', currency }).formatToParts(0).find((p) => p.type === 'currency');
    return part ? part.value : currency;
  } catch {
    return currency;
  }
}

function NodeView({ node, path, onChange, onRemove, ctx, depth }) {
  const t = ctx.t;
  if (isNot(node)) {
    return (
      <div class="seg-not" data-testid="seg-not">
        <label class="seg-exclude">
          <input type="checkbox" checked onChange={() => onChange(node.not)} /> {t('exclude')}
        </label>
        <NodeView node={node.not} path={`${path}.not`} onChange={(n) => onChange({ not: n })} onRemove={onRemove} ctx={ctx} depth={depth} negated />
      </div>
    );
  }
  if (isGroup(node)) return <GroupView node={node} path={path} onChange={onChange} onRemove={onRemove} ctx={ctx} depth={depth} />;
  return <ConditionRow node={node} path={path} onChange={onChange} onRemove={onRemove} ctx={ctx} />;
}

function NodeError({ rest, ctx }) {
  if (rest === null) return null;
  return (
    <div class="seg-node-error field-error" role="alert" data-testid="node-error">
      {errorText(ctx.error)}
    </div>
  );
}

function ConditionRow({ node, path, onChange, onRemove, ctx }) {
  const t = ctx.t;
  const rest = ownError(ctx.error, path);
  const kind = kindOf(node);
  const wrapNot = () => onChange({ not: node });
  return (
    <div class={`seg-row ${rest !== null ? 'has-error' : ''}`} data-testid="seg-node" data-path={path} data-kind={kind}>
      <div class="seg-row-main">
        <select aria-label={t('kind')} class="seg-kind" value={kind} onChange={(e) => onChange(newCondition(e.currentTarget.value, ctx))}>
          {KINDS.map((k) => (
            <option value={k}>{t(`k_${k}`)}</option>
          ))}
        </select>
        <ConditionEditor c={node} onChange={onChange} bad={controlOf(rest)} t={t} ctx={ctx} />
        <span class="seg-row-tools">
          {!ctx.underNot(path) && (
            <button type="button" class="link" onClick={wrapNot} title={t('exclude')}>
              {t('not')}
            </button>
          )}
          {onRemove && (
            <button type="button" class="link danger-link" onClick={onRemove} aria-label={t('removeCondition', { n: position(path), kind: t(`k_${kind}`) })}>
              {t('remove')}
            </button>
          )}
        </span>
      </div>
      <NodeError rest={rest} ctx={ctx} />
    </div>
  );
}

function GroupView({ node, path, onChange, onRemove, ctx, depth }) {
  const t = ctx.t;
  const op = Array.isArray(node.and) ? 'and' : 'or';
  const children = node[op];
  const rest = ownError(ctx.error, path);
  const setChildren = (list) => onChange({ [op]: list });
  const name = `op-${path}`;
  return (
    <div class={`seg-group depth-${depth % 3} ${rest !== null ? 'has-error' : ''}`} data-testid="seg-group" data-path={path} role="group" aria-label={t(op === 'and' ? 'all' : 'any')}>
      <div class="seg-group-head">
        <span class="seg-op" role="radiogroup" aria-label={t('groupOp')}>
          {['and', 'or'].map((o) => (
            <label class={o === op ? 'on' : ''}>
              <input type="radio" name={name} value={o} checked={o === op} onChange={() => onChange({ [o]: children })} />
              {t(o === 'and' ? 'all' : 'any')}
            </label>
          ))}
        </span>
        <span class="spacer" />
        {!ctx.underNot(path) && (
          <button type="button" class="link" onClick={() => onChange({ not: node })}>
            {t('not')}
          </button>
        )}
        {onRemove && (
          <button type="button" class="link danger-link" onClick={onRemove} aria-label={t('removeGroup', { n: position(path), op: t(op === 'and' ? 'all' : 'any') })}>
            {t('remove')}
          </button>
        )}
      </div>
      <NodeError rest={rest} ctx={ctx} />
      <div class="seg-children">
        {children.length === 0 && <div class="muted">{t('empty')}</div>}
        {children.map((child, i) => (
          <NodeView
            key={`${i}`}
            node={child}
            path={`${path}.${op}[${i}]`}
            depth={depth + 1}
            ctx={ctx}
            onChange={(n) => setChildren(children.map((c, j) => (j === i ? n : c)))}
            onRemove={() => setChildren(children.filter((_, j) => j !== i))}
          />
        ))}
      </div>
      <div class="seg-add">
        <button type="button" data-testid="add-condition" onClick={() => setChildren([...children, newCondition('purchase', ctx)])}>
          {t('addCondition')}
        </button>
        <button type="button" onClick={() => setChildren([...children, { and: [newCondition('purchase', ctx)] }])}>
          {t('addGroup')}
        </button>
      </div>
    </div>
  );
}

/**
 * The builder. `value`: a definition (any node); `onChange(next)`; `error`: an ApiError whose
 * `field` starts with `root`; `segments`: for the segment picker; `skus`: known SKUs; `disabled`:
 * shown, not changed (a role that may not, an archived journey): every control of the tree and
 * the JSON are disabled, the view (builder or JSON) may still be switched.
 */
export function SegmentBuilder({ value, onChange, error, root = 'definition', segments = [], skus = [], tags = [], idPrefix = 'seg', disabled = false }) {
  const t = useT(strings);
  const [mode, setMode] = useState('visual');
  const [raw, setRaw] = useState(() => JSON.stringify(value, null, 2));
  const [rawError, setRawError] = useState(null);
  const lastSent = useRef(value);
  useEffect(() => {
    if (value !== lastSent.current) setRaw(JSON.stringify(value, null, 2));
  }, [value]);
  const ctx = {
    t,
    error,
    segments,
    skuList: `${idPrefix}-skus`,
    tagList: `${idPrefix}-tags`,
    catList: `${idPrefix}-categories`,
    modelList: `${idPrefix}-models`,
    underNot: (p) => p.endsWith('.not'),
  };
  const node = value && typeof value === 'object' ? value : { and: [] };
  // A root that is a condition or a `not` gets the same tools as a group: wrap it to add more.
  const rootIsGroup = isGroup(node);
  return (
    <div class="seg-builder">
      <datalist id={`${idPrefix}-skus`}>
        {skus.map((s) => (
          <option value={s} />
        ))}
      </datalist>
      <datalist id={ctx.tagList}>
        {[...new Set([...tags, ...knownValues([value], 'tag')])].map((s) => (
          <option value={s} />
        ))}
      </datalist>
      <datalist id={ctx.catList}>
        {CATEGORIES.map((s) => (
          <option value={s} />
        ))}
      </datalist>
      <datalist id={ctx.modelList}>
        {['rfm', 'aipl', 'predict.churn_risk', 'predict.clv', 'predict.aov', 'predict.expected_purchases'].map((m) => (
          <option value={m} />
        ))}
      </datalist>
      <div class="seg-mode" role="radiogroup" aria-label={t('view')}>
        {['visual', 'json'].map((m) => (
          <label class={mode === m ? 'on' : ''}>
            <input
              type="radio"
              name={`${idPrefix}-mode`}
              value={m}
              checked={mode === m}
              onChange={() => {
                setMode(m);
                setRaw(JSON.stringify(value, null, 2));
                setRawError(null);
              }}
            />
            {t(m === 'visual' ? 'visual' : 'rawJson')}
          </label>
        ))}
      </div>
      {mode === 'json' ? (
        <div class={`field ${rawError || (error && error.field) ? 'has-error' : ''}`}>
          <label for={`${idPrefix}-json`}>{t('rawJson')}</label>
          <textarea
            id={`${idPrefix}-json`}
            rows={14}
            value={raw}
            readOnly={disabled}
            aria-invalid={rawError ? 'true' : undefined}
            onInput={(e) => {
              const text = e.currentTarget.value;
              setRaw(text);
              try {
                const parsed = JSON.parse(text);
                setRawError(null);
                lastSent.current = parsed;
                onChange(parsed);
              } catch (err) {
                setRawError(err.message);
              }
            }}
          />
          {rawError && <div class="field-error" role="alert">{t('badJson', { m: rawError })}</div>}
          {!rawError && error && error.field && (
            <div class="field-error" role="alert">
              {error.field}: {errorText(error)}
            </div>
          )}
        </div>
      ) : (
        // A disabled fieldset disables every control under it, however deep.
        <fieldset class="seg-tree" disabled={disabled} data-testid="seg-tree">
          {rootIsGroup ? (
            <NodeView node={node} path={root} onChange={onChange} ctx={ctx} depth={0} />
          ) : (
            <div class="seg-group depth-0">
              <NodeView node={node} path={root} onChange={onChange} ctx={ctx} depth={1} />
              <div class="seg-add">
                <button type="button" data-testid="add-condition" onClick={() => onChange({ and: [node, newCondition('purchase', ctx)] })}>
                  {t('addCondition')}
                </button>
              </div>
            </div>
          )}
        </fieldset>
      )}
    </div>
  );
}

/**
 * The live count of a definition: POST /v1/segments/preview, debounced, the newest answer only.
 * Answers `{count, sample, error, loading}`.
 */
export function usePreview(definition, delay = 350) {
  const key = JSON.stringify(definition);
  const [state, setState] = useState({ count: null, sample: [], error: null, loading: true, key: null });
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    const timer = setTimeout(() => {
      post('/v1/segments/preview', { definition, limit: 5 }, { signal: ctl.signal }).then(
        (r) => setState({ count: r.count, sample: r.sample || [], error: null, loading: false, key }),
        (error) => {
          if (error.name !== 'AbortError') setState({ count: null, sample: [], error, loading: false, key });
        },
      );
    }, delay);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}

export function LiveCount({ preview }) {
  const t = useT(strings);
  const ready = !preview.loading && !preview.error && preview.count !== null;
  return (
    <div class="live-count" data-testid="live-count" data-state={preview.loading ? 'loading' : preview.error ? 'error' : 'ready'} data-count={ready ? preview.count : undefined} data-definition={preview.loading ? undefined : preview.key}>
      <span class="muted">{t('liveCount')}</span>
      <output aria-live="polite">
        {preview.loading ? (
          <span class="muted">{t('counting')}</span>
        ) : preview.error ? (
          <span class="bad">—</span>
        ) : (
          <strong>{t('customers', { n: number(preview.count, 0) })}</strong>
        )}
      </output>
    </div>
  );
}


// The side panels: a form per node kind (the trigger with entry, goal, budget and holdout; each
// step kind), with the targets to connect it to chosen from selects, and the API's error on the
// field at fault.
import { useT } from '../../i18n.js';
import { toMajor, toMinor } from '../../format.js';
import { Field, useApi } from '../../ui.jsx';
import { can } from '../../session.js';
import { SegmentBuilder } from '../segments/builder.jsx';
import { strings } from './strings.js';
import { channelName } from './names.js';
import { TRIGGER, kindOf } from './graph.js';

const EVENTS = ['order.paid', 'order.refunded', 'order.created', 'behaviour.recorded', 'customer.created', 'customer.updated', 'segment.entered', 'segment.exited', 'coupon.redeemed', 'points.changed'];
const FIELD_OPS = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'contains', 'exists'];
/** The usual channels, offered when the shop's own cannot be read (a role without `messages:manage`). */
const CHANNELS = ['sms', 'email', 'wechat', 'app-push'];

/** The shop's channels (GET /v1/shop/channels), or the usual ones when that fails or lists none. */
function useChannels() {
  // Only a role that manages messages may read them; others get the usual list without asking.
  const state = useApi(can('messages:manage') ? '/v1/shop/channels' : null);
  const own = state.data && Array.isArray(state.data.items) ? [...new Set(state.data.items.map((c) => c.channel))] : [];
  return own.length ? own : CHANNELS;
}

/** A number from an input (or the text as typed, for the API to refuse); '' → undefined. */
function num(text) {
  const s = String(text).trim();
  if (s === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s;
}
const show = (v) => (v === undefined || v === null ? '' : String(v));
function money(text) {
  const s = String(text).trim();
  if (s === '') return undefined;
  const n = toMinor(s);
  return Number.isNaN(n) ? s : n;
}
const showMoney = (v) => (typeof v === 'number' ? toMajor(v) : show(v));
function scalar(text) {
  const s = String(text).trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  if (s === 'true') return true;
  if (s === 'false') return false;
  return String(text);
}
/** Set `key` in `obj` (dropping it when undefined). */
function set(obj, key, value) {
  const next = { ...(obj || {}) };
  if (value === undefined) delete next[key];
  else next[key] = value;
  return next;
}

function makeErr(rest, message) {
  return (name) => {
    if (rest === null || rest === undefined) return null;
    return rest === name || rest.startsWith(`${name}.`) || rest.startsWith(`${name}[`) ? message : null;
  };
}

function Text({ label, value, onInput, err, name, list, placeholder, disabled, inputMode }) {
  return (
    <Field label={label} error={err}>
      {(p) => <input {...p} name={name} list={list} placeholder={placeholder} disabled={disabled} inputMode={inputMode} value={value} onInput={(e) => onInput(e.currentTarget.value)} />}
    </Field>
  );
}

function Target({ label, value, onChange, steps, self, err, name, disabled }) {
  const t = useT(strings);
  return (
    <Field label={label} error={err}>
      {(p) => (
        <select {...p} name={name} value={value || ''} disabled={disabled} onChange={(e) => onChange(e.currentTarget.value || undefined)}>
          <option value="">{t('end')}</option>
          {Object.keys(steps)
            .filter((id) => id !== self)
            .map((id) => (
              <option value={id}>
                {id} · {t(`k_${kindOf(steps[id])}`)}
              </option>
            ))}
          {value && !steps[value] && <option value={value}>{value} ?</option>}
        </select>
      )}
    </Field>
  );
}

function FieldTests({ tests, onChange, base, rest, message, disabled }) {
  const t = useT(strings);
  const list = Array.isArray(tests) ? tests : [];
  const put = (i, v) => onChange(list.map((x, j) => (j === i ? v : x)));
  return (
    <fieldset class="jn-fieldset">
      <legend>{t('filters')}</legend>
      {list.map((ft, i) => {
        const at = `${base}[${i}]`;
        const err = makeErr(rest, message);
        const valueText = Array.isArray(ft.value) ? ft.value.join(', ') : show(ft.value);
        return (
          <div class="jn-test-row">
            <Text label={t('field')} value={ft.field || ''} err={err(`${at}.field`) || (rest === at ? message : null)} disabled={disabled} onInput={(v) => put(i, { ...ft, field: v })} />
            <Field label={t('op')} error={err(`${at}.op`)}>
              {(p) => (
                <select {...p} value={ft.op} disabled={disabled} onChange={(e) => {
                  const op = e.currentTarget.value;
                  put(i, { ...ft, op, value: op === 'exists' ? true : op === 'in' ? (Array.isArray(ft.value) ? ft.value : [ft.value].filter((x) => x !== undefined && x !== '')) : Array.isArray(ft.value) ? ft.value[0] : ft.value });
                }}>
                  {FIELD_OPS.map((o) => (
                    <option value={o}>{t(`fo_${o}`)}</option>
                  ))}
                </select>
              )}
            </Field>
            {ft.op !== 'exists' && (
              <Text
                label={t('value')}
                value={valueText}
                err={err(`${at}.value`)}
                disabled={disabled}
                onInput={(v) => put(i, { ...ft, value: ft.op === 'in' ? v.split(/[,，]/).map((x) => x.trim()).filter(Boolean).map(scalar) : scalar(v) })}
              />
            )}
            <button type="button" class="link danger-link" disabled={disabled} onClick={() => onChange(list.filter((_, j) => j !== i))}>
              {t('remove')}
            </button>
          </div>
        );
      })}
      <button type="button" disabled={disabled} onClick={() => onChange([...list, { field: '', op: 'eq', value: '' }])}>
        {t('addFilter')}
      </button>
    </fieldset>
  );
}

export function TriggerPanel({ definition, onChange, rest, message, segments, disabled, apiError }) {
  const t = useT(strings);
  const err = makeErr(rest, message);
  const tr = definition.trigger || {};
  const kind = tr.segment !== undefined ? 'segment' : tr.date !== undefined ? 'date' : 'event';
  const setTrigger = (next) => onChange({ ...definition, trigger: next });
  const keepCustomer = tr.customer !== undefined ? { customer: tr.customer } : {};
  const entry = definition.entry || {};
  const goal = definition.goal;
  const budget = definition.budget || {};
  return (
    <div class="jn-panel-body" data-testid="trigger-panel">
      {rest === 'trigger' && <div class="field-error" role="alert">{message}</div>}
      <Field label={t('triggerKind')} error={null}>
        {(p) => (
          <select
            {...p}
            value={kind}
            disabled={disabled}
            onChange={(e) => {
              const k = e.currentTarget.value;
              setTrigger(k === 'event' ? { event: 'order.paid', ...keepCustomer } : k === 'segment' ? { segment: segments[0] ? segments[0].id : 1, ...keepCustomer } : { date: { field: 'birthday', offset_days: 0, at: '09:00' }, ...keepCustomer });
            }}
          >
            <option value="event">{t('tk_event')}</option>
            <option value="segment">{t('tk_segment')}</option>
            <option value="date">{t('tk_date')}</option>
          </select>
        )}
      </Field>
      {kind === 'event' && (
        <>
          <Text label={t('event')} name="trigger.event" value={tr.event || ''} list="jn-events" err={err('trigger.event')} disabled={disabled} onInput={(v) => setTrigger({ ...tr, event: v })} />
          <FieldTests tests={tr.where} base="trigger.where" rest={rest} message={message} disabled={disabled} onChange={(w) => setTrigger(set(tr, 'where', w.length ? w : undefined))} />
        </>
      )}
      {kind === 'segment' && (
        <Field label={t('segment')} error={err('trigger.segment')}>
          {(p) => (
            <select {...p} value={String(tr.segment)} disabled={disabled} onChange={(e) => setTrigger({ ...tr, segment: Number(e.currentTarget.value) })}>
              {!segments.some((s) => s.id === tr.segment) && <option value={String(tr.segment)}>#{tr.segment}</option>}
              {segments.map((s) => (
                <option value={String(s.id)}>
                  #{s.id} {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
      )}
      {kind === 'date' && (
        <div class="jn-grid3">
          <Text label={t('dateField')} value={tr.date.field || ''} list="jn-date-fields" err={err('trigger.date.field')} disabled={disabled} onInput={(v) => setTrigger({ ...tr, date: { ...tr.date, field: v } })} />
          <Text label={t('offsetDays')} value={show(tr.date.offset_days)} inputMode="numeric" err={err('trigger.date.offset_days')} disabled={disabled} onInput={(v) => setTrigger({ ...tr, date: set(tr.date, 'offset_days', num(v)) })} />
          <Text label={t('at')} value={tr.date.at || ''} placeholder="09:00" err={err('trigger.date.at')} disabled={disabled} onInput={(v) => setTrigger({ ...tr, date: set(tr.date, 'at', v || undefined) })} />
        </div>
      )}
      <label class="jn-check">
        <input type="checkbox" checked={tr.customer !== undefined} disabled={disabled} onChange={(e) => setTrigger(set(tr, 'customer', e.currentTarget.checked ? { and: [{ stat: 'order_count', op: 'gte', value: 1 }] } : undefined))} />
        {t('audience')}
      </label>
      {tr.customer !== undefined && (
        <SegmentBuilder value={tr.customer} onChange={(c) => setTrigger({ ...tr, customer: c })} error={apiError} root="definition.trigger.customer" segments={segments} idPrefix="jn-trigger" disabled={disabled} />
      )}
      <fieldset class="jn-fieldset">
        <legend>{t('entry')}</legend>
        <label class="jn-check">
          <input type="checkbox" checked={!!entry.reentry} disabled={disabled} onChange={(e) => onChange({ ...definition, entry: set(entry, 'reentry', e.currentTarget.checked || undefined) })} />
          {t('reentry')}
        </label>
        {entry.reentry && (
          <div class="jn-grid2">
            <Text label={t('minInterval')} value={show(entry.min_interval_days)} inputMode="numeric" err={err('entry.min_interval_days')} disabled={disabled} onInput={(v) => onChange({ ...definition, entry: set(entry, 'min_interval_days', num(v)) })} />
            <Text label={t('maxConcurrent')} value={show(entry.max_concurrent)} inputMode="numeric" err={err('entry.max_concurrent')} disabled={disabled} onInput={(v) => onChange({ ...definition, entry: set(entry, 'max_concurrent', num(v)) })} />
          </div>
        )}
        <Text label={t('holdout')} name="holdout_percent" value={show(definition.holdout_percent)} inputMode="numeric" err={err('holdout_percent')} disabled={disabled} onInput={(v) => onChange(set(definition, 'holdout_percent', num(v)))} />
      </fieldset>
      <fieldset class="jn-fieldset">
        <legend>{t('goal')}</legend>
        <label class="jn-check">
          <input type="checkbox" checked={!!goal} disabled={disabled} onChange={(e) => onChange(set(definition, 'goal', e.currentTarget.checked ? { event: 'order.paid', within_days: 30 } : undefined))} />
          {t('hasGoal')}
        </label>
        {goal && (
          <>
            <div class="jn-grid2">
              <Text label={t('goalEvent')} value={goal.event || ''} list="jn-events" err={err('goal.event')} disabled={disabled} onInput={(v) => onChange({ ...definition, goal: { ...goal, event: v } })} />
              <Text label={t('withinDays')} value={show(goal.within_days)} inputMode="numeric" err={err('goal.within_days')} disabled={disabled} onInput={(v) => onChange({ ...definition, goal: set(goal, 'within_days', num(v)) })} />
            </div>
            <FieldTests tests={goal.where} base="goal.where" rest={rest} message={message} disabled={disabled} onChange={(w) => onChange({ ...definition, goal: set(goal, 'where', w.length ? w : undefined) })} />
          </>
        )}
      </fieldset>
      <fieldset class="jn-fieldset">
        <legend>{t('budget')}</legend>
        <div class="jn-grid2">
          <Text label={t('bCoupons')} value={show(budget.coupons)} inputMode="numeric" err={err('budget.coupons')} disabled={disabled} onInput={(v) => onChange({ ...definition, budget: set(budget, 'coupons', num(v)) })} />
          <Text label={t('bCouponValue')} value={showMoney(budget.coupon_value)} inputMode="decimal" err={err('budget.coupon_value')} disabled={disabled} onInput={(v) => onChange({ ...definition, budget: set(budget, 'coupon_value', money(v)) })} />
          <Text label={t('bMessages')} value={show(budget.messages)} inputMode="numeric" err={err('budget.messages')} disabled={disabled} onInput={(v) => onChange({ ...definition, budget: set(budget, 'messages', num(v)) })} />
          <Text label={t('bMessageCost')} value={showMoney(budget.message_cost)} inputMode="decimal" err={err('budget.message_cost')} disabled={disabled} onInput={(v) => onChange({ ...definition, budget: set(budget, 'message_cost', money(v)) })} />
        </div>
      </fieldset>
      <Target label={t('start')} name="start" value={definition.start} steps={definition.steps || {}} self={TRIGGER} err={err('start')} disabled={disabled} onChange={(v) => onChange({ ...definition, start: v || '' })} />
      {rest && !['trigger', 'entry', 'goal', 'budget', 'holdout_percent', 'start'].some((k) => rest === k || rest.startsWith(`${k}.`) || rest.startsWith(`${k}[`)) && (
        <div class="field-error" role="alert">
          {rest}: {message}
        </div>
      )}
      <datalist id="jn-events">
        {EVENTS.map((e) => (
          <option value={e} />
        ))}
      </datalist>
      <datalist id="jn-date-fields">
        <option value="birthday" />
      </datalist>
    </div>
  );
}

export function StepPanel({ id, definition, onChange, onRemove, rest, message, segments, templates, disabled, apiError }) {
  const t = useT(strings);
  const steps = definition.steps || {};
  const step = steps[id];
  const kind = kindOf(step);
  const err = makeErr(rest, message);
  const put = (next) => onChange({ ...definition, steps: { ...steps, [id]: next } });
  const body = step[kind];
  const setBody = (b) => put({ ...step, [kind]: b });
  const channels = useChannels();
  const target = (field, label) => <Target label={label} name={field} value={step[field]} steps={steps} self={id} err={err(field)} disabled={disabled} onChange={(v) => put(set(step, field, v))} />;
  let form = null;
  switch (kind) {
    case 'send': {
      const vars = Object.entries(body.variables || {});
      const setVars = (list) => setBody(set(body, 'variables', list.length ? Object.fromEntries(list) : undefined));
      form = (
        <>
          <div class="jn-grid2">
            <Text label={t('channel')} name="send.channel" value={body.channel || ''} list="jn-channels" err={err('send.channel')} disabled={disabled} onInput={(v) => setBody({ ...body, channel: v })} />
            <Text label={t('template')} name="send.template" value={body.template || ''} err={err('send.template')} disabled={disabled} onInput={(v) => setBody({ ...body, template: v })} />
          </div>
          <fieldset class="jn-fieldset">
            <legend>{t('variables')}</legend>
            {rest === 'send.variables' && <div class="field-error" role="alert">{message}</div>}
            {vars.map(([name, text], i) => (
              <div class="jn-test-row">
                <Text label={t('varName')} value={name} disabled={disabled} onInput={(v) => setVars(vars.map((x, j) => (j === i ? [v, x[1]] : x)))} />
                <Text label={t('varValue')} value={text} err={err(`send.variables.${name}`)} disabled={disabled} onInput={(v) => setVars(vars.map((x, j) => (j === i ? [x[0], v] : x)))} />
                <button type="button" class="link danger-link" disabled={disabled} onClick={() => setVars(vars.filter((_, j) => j !== i))}>
                  {t('remove')}
                </button>
              </div>
            ))}
            <button type="button" disabled={disabled} onClick={() => setVars([...vars, [`var${vars.length + 1}`, '']])}>
              {t('addVariable')}
            </button>
          </fieldset>
          {target('next', t('next'))}
          <datalist id="jn-channels">
            {channels.map((c) => (
              <option value={c} label={channelName(t, c)} />
            ))}
          </datalist>
        </>
      );
      break;
    }
    case 'coupon': {
      const tiers = body.by_trigger_amount || [];
      const tplSelect = (value, onSel, label, e) => (
        <Field label={label} error={e}>
          {(p) => (
            <select {...p} value={String(value)} disabled={disabled} onChange={(ev) => onSel(Number(ev.currentTarget.value))}>
              {!templates.some((x) => x.id === value) && <option value={String(value)}>#{value}</option>}
              {templates.map((x) => (
                <option value={String(x.id)}>
                  #{x.id} {x.name}
                </option>
              ))}
            </select>
          )}
        </Field>
      );
      const setTiers = (list) => setBody(set(body, 'by_trigger_amount', list.length ? list : undefined));
      form = (
        <>
          {tplSelect(body.template_id, (v) => setBody({ ...body, template_id: v }), t('couponTemplate'), err('coupon.template_id') || (rest === 'coupon' ? message : null))}
          <fieldset class="jn-fieldset">
            <legend>{t('tiers')}</legend>
            {tiers.map((tier, i) => (
              <div class="jn-test-row">
                <Text label={t('atLeastAmount')} value={showMoney(tier.at_least)} inputMode="decimal" err={err(`coupon.by_trigger_amount[${i}]`)} disabled={disabled} onInput={(v) => setTiers(tiers.map((x, j) => (j === i ? { ...x, at_least: money(v) } : x)))} />
                {tplSelect(tier.template_id, (v) => setTiers(tiers.map((x, j) => (j === i ? { ...x, template_id: v } : x))), t('couponTemplate'), null)}
                <button type="button" class="link danger-link" disabled={disabled} onClick={() => setTiers(tiers.filter((_, j) => j !== i))}>
                  {t('remove')}
                </button>
              </div>
            ))}
            <button type="button" disabled={disabled} onClick={() => setTiers([...tiers, { at_least: 10000, template_id: body.template_id }])}>
              {t('addTier')}
            </button>
          </fieldset>
          {target('next', t('next'))}
        </>
      );
      break;
    }
    case 'tag': {
      const mode = body.remove !== undefined ? 'remove' : 'add';
      form = (
        <>
          <div class="jn-grid2">
            <Field label={t('tagMode')}>
              {(p) => (
                <select {...p} value={mode} disabled={disabled} onChange={(e) => setBody({ [e.currentTarget.value]: body[mode] || '' })}>
                  <option value="add">{t('tagAdd')}</option>
                  <option value="remove">{t('tagRemove')}</option>
                </select>
              )}
            </Field>
            <Text label={t('tag')} name="tag" value={body[mode] || ''} err={err('tag')} disabled={disabled} onInput={(v) => setBody({ [mode]: v })} />
          </div>
          {target('next', t('next'))}
        </>
      );
      break;
    }
    case 'points':
      form = (
        <>
          <div class="jn-grid2">
            <Text label={t('award')} name="points.award" value={show(body.award)} inputMode="numeric" err={err('points.award') || (rest === 'points' ? message : null)} disabled={disabled} onInput={(v) => setBody({ ...body, award: num(v) ?? '' })} />
            <Text label={t('expires')} value={show(body.expires_in_days)} inputMode="numeric" err={err('points.expires_in_days')} disabled={disabled} onInput={(v) => setBody(set(body, 'expires_in_days', num(v)))} />
          </div>
          <Text label={t('reason')} value={body.reason || ''} err={err('points.reason')} disabled={disabled} onInput={(v) => setBody(set(body, 'reason', v || undefined))} />
          {target('next', t('next'))}
        </>
      );
      break;
    case 'wait':
      form = (
        <>
          {(rest === 'wait' || rest === '') && message && <div class="field-error" role="alert">{message}</div>}
          <div class="jn-grid3">
            <Text label={t('days')} value={show(body.days)} inputMode="numeric" err={err('wait.days')} disabled={disabled} onInput={(v) => setBody(set(body, 'days', num(v)))} />
            <Text label={t('hours')} value={show(body.hours)} inputMode="numeric" err={err('wait.hours')} disabled={disabled} onInput={(v) => setBody(set(body, 'hours', num(v)))} />
            <Text label={t('minutes')} value={show(body.minutes)} inputMode="numeric" err={err('wait.minutes')} disabled={disabled} onInput={(v) => setBody(set(body, 'minutes', num(v)))} />
          </div>
          <div class="jn-grid2">
            <Text label={t('until')} value={body.until || ''} placeholder="10:00" err={err('wait.until')} disabled={disabled} onInput={(v) => setBody(set(body, 'until', v || undefined))} />
            <Text label={t('beforeExpiry')} value={show(body.before_coupon_expires_days)} inputMode="numeric" err={err('wait.before_coupon_expires_days')} disabled={disabled} onInput={(v) => setBody(set(body, 'before_coupon_expires_days', num(v)))} />
          </div>
          {target('next', t('next'))}
        </>
      );
      break;
    case 'branch': {
      const mode = body.customer !== undefined ? 'customer' : 'event';
      form = (
        <>
          {rest === 'branch' && <div class="field-error" role="alert">{message}</div>}
          <Field label={t('branchMode')}>
            {(p) => (
              <select {...p} value={mode} disabled={disabled} onChange={(e) => setBody(e.currentTarget.value === 'customer' ? { customer: { and: [{ tag: 'vip' }] } } : { event: 'order.paid' })}>
                <option value="customer">{t('bm_customer')}</option>
                <option value="event">{t('bm_event')}</option>
              </select>
            )}
          </Field>
          {mode === 'customer' ? (
            <SegmentBuilder value={body.customer} onChange={(c) => setBody({ customer: c })} error={apiError} root={`definition.steps.${id}.branch.customer`} segments={segments} idPrefix={`jn-branch-${id}`} disabled={disabled} />
          ) : (
            <>
              <Text label={t('event')} value={body.event || ''} list="jn-events" err={err('branch.event')} disabled={disabled} onInput={(v) => setBody({ ...body, event: v })} />
              <FieldTests tests={body.where} base="branch.where" rest={rest} message={message} disabled={disabled} onChange={(w) => setBody(set(body, 'where', w.length ? w : undefined))} />
            </>
          )}
          <div class="jn-grid2">
            {target('yes', t('yes'))}
            {target('no', t('no'))}
          </div>
          <datalist id="jn-events">
            {EVENTS.map((e) => (
              <option value={e} />
            ))}
          </datalist>
        </>
      );
      break;
    }
    case 'split': {
      const variants = Array.isArray(body) ? body : [];
      const setV = (list) => put({ ...step, split: list });
      form = (
        <fieldset class="jn-fieldset">
          <legend>{t('variants')}</legend>
          {rest === 'split' && <div class="field-error" role="alert">{message}</div>}
          {variants.map((v, i) => (
            <div class="jn-test-row">
              <Text label={t('variant')} value={v.variant} err={err(`split[${i}].variant`)} disabled={disabled} onInput={(x) => setV(variants.map((y, j) => (j === i ? { ...y, variant: x } : y)))} />
              <Text label={t('weight')} value={show(v.weight)} inputMode="numeric" err={err(`split[${i}].weight`)} disabled={disabled} onInput={(x) => setV(variants.map((y, j) => (j === i ? { ...y, weight: num(x) ?? '' } : y)))} />
              <Target label={t('next')} value={v.next} steps={steps} self={id} err={err(`split[${i}].next`)} disabled={disabled} onChange={(x) => setV(variants.map((y, j) => (j === i ? set(y, 'next', x) : y)))} />
              <button type="button" class="link danger-link" disabled={disabled} onClick={() => setV(variants.filter((_, j) => j !== i))}>
                {t('remove')}
              </button>
            </div>
          ))}
          <button type="button" disabled={disabled} onClick={() => setV([...variants, { variant: String.fromCharCode(65 + variants.length), weight: 50 }])}>
            {t('addVariant')}
          </button>
        </fieldset>
      );
      break;
    }
    default:
      form = <p class="muted">{t('exitText')}</p>;
  }
  return (
    <div class="jn-panel-body" data-testid="step-panel" data-step={id}>
      {rest === '' && message && (
        <div class="field-error" role="alert">
          {message}
        </div>
      )}
      {form}
      {rest && ['next', 'yes', 'no', 'exit'].includes(rest) === false && !/^(send|coupon|tag|points|wait|branch|split)/.test(rest) && (
        <div class="field-error" role="alert">
          {rest}: {message}
        </div>
      )}
      {!disabled && (
        <button type="button" class="danger jn-remove" onClick={onRemove}>
          {t('removeStep')}
        </button>
      )}
    </div>
  );
}

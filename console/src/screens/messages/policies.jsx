// Per channel: the frequency cap, quiet hours and cost of a message
// (GET/PUT /v1/shop/settings/messaging), errors on the field the API names
// (`channels.sms.quiet_hours.end`).
import { useState } from 'preact/hooks';
import { put } from '../../api.js';
import { useT } from '../../i18n.js';
import { can, currentShop } from '../../session.js';
import { Async, Card, ErrorBox, useApi } from '../../ui.jsx';
import { money, toMajor, toMinor } from '../../format.js';
import { cleanMessage } from '../plugins/schema-form.jsx';
import { channelName, SaveRow } from '../loyalty/common.jsx';

const strings = {
  en: {
    title: 'Caps, quiet hours and cost',
    intro: 'Per channel: how many messages a customer may get in a window, the hours when messages wait (in the shop’s time zone, {zone}), and what one message costs (counted in journeys’ ROI).',
    none: 'No channel has a policy yet. Add one below.',
    cap: 'Frequency cap',
    capMax: 'At most (messages)',
    capWindow: 'per (hours)',
    noCap: 'Leave both empty for no cap.',
    quiet: 'Quiet hours',
    quietFrom: 'From',
    quietTo: 'To',
    noQuiet: 'Leave both empty for none; across midnight works (21:00 to 08:00).',
    cost: 'Cost per message ({cur})',
    add: 'Add a channel',
    channelName: 'Channel',
    channelHint: 'Lower-case letters, digits or -, e.g. sms, email, webhook.',
    addButton: 'Add',
    remove: 'Remove the policy of {channel}',
    save: 'Save policies',
    saved: 'Saved.',
    numberNeeded: 'Enter a whole number.',
    amountNeeded: 'Enter an amount, e.g. 0.05.',
    bothNeeded: 'Give both, or neither.',
    needsScope: 'Messaging policies need the messages:manage permission.',
    summary: '{cap} · {quiet} · {cost} each',
    capSummary: 'at most {max} per {hours} h',
    uncapped: 'no cap',
    quietSummary: 'quiet {start}–{end}',
    noQuietSummary: 'no quiet hours',
  },
  'zh-CN': {
    title: '频次上限、免打扰时段与成本',
    intro: '按渠道设置：一位客户在时间窗口内最多收到几条消息、消息暂缓发送的时段（店铺时区 {zone}），以及每条消息的成本（计入营销流程的 ROI）。',
    none: '还没有渠道设置策略。请在下方添加。',
    cap: '频次上限',
    capMax: '最多（条）',
    capWindow: '每（小时）',
    noCap: '两项都留空表示不限。',
    quiet: '免打扰时段',
    quietFrom: '开始',
    quietTo: '结束',
    noQuiet: '两项都留空表示不设；可跨午夜（21:00 到 08:00）。',
    cost: '每条成本（{cur}）',
    add: '添加渠道',
    channelName: '渠道',
    channelHint: '小写字母、数字或 -，例如 sms、email、webhook。',
    addButton: '添加',
    remove: '删除 {channel} 的策略',
    save: '保存策略',
    saved: '已保存。',
    numberNeeded: '请输入整数。',
    amountNeeded: '请输入金额，例如 0.05。',
    bothNeeded: '请两项都填写，或都留空。',
    needsScope: '消息策略需要 messages:manage 权限。',
    summary: '{cap} · {quiet} · 每条 {cost}',
    capSummary: '每 {hours} 小时最多 {max} 条',
    uncapped: '不限频次',
    quietSummary: '免打扰 {start}–{end}',
    noQuietSummary: '无免打扰',
  },
};

function toRows(settings) {
  const rows = {};
  for (const [ch, p] of Object.entries(settings.channels || {})) {
    rows[ch] = {
      max: p.frequency_cap ? String(p.frequency_cap.max) : '',
      hours: p.frequency_cap ? String(p.frequency_cap.window_hours) : '',
      start: p.quiet_hours ? p.quiet_hours.start : '',
      end: p.quiet_hours ? p.quiet_hours.end : '',
      cost: toMajor(p.cost_per_message || 0),
    };
  }
  return rows;
}

function Editor({ settings, channels, onSaved }) {
  const t = useT(strings);
  const [rows, setRows] = useState(() => {
    const r = toRows(settings);
    for (const ch of channels) if (!r[ch]) r[ch] = { max: '', hours: '', start: '', end: '', cost: toMajor(0) };
    return r;
  });
  const [adding, setAdding] = useState('');
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const cur = currentShop()?.currency || 'CNY';
  const set = (ch, k) => (e) => setRows({ ...rows, [ch]: { ...rows[ch], [k]: e.currentTarget.value } });
  const on = (field) => (error && error.field === field ? cleanMessage(error) : null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const body = { channels: {} };
    for (const [ch, r] of Object.entries(rows)) {
      const p = { cost_per_message: toMinor(r.cost.trim() === '' ? '0' : r.cost) };
      const f = `channels.${ch}`;
      if (Number.isNaN(p.cost_per_message)) return setError({ field: `${f}.cost_per_message`, message: t('amountNeeded') });
      if (r.max.trim() || r.hours.trim()) {
        if (!r.max.trim() || !r.hours.trim()) return setError({ field: `${f}.frequency_cap`, message: t('bothNeeded') });
        if (!/^\d+$/.test(r.max.trim()) || !/^\d+$/.test(r.hours.trim())) return setError({ field: `${f}.frequency_cap`, message: t('numberNeeded') });
        p.frequency_cap = { max: Number(r.max), window_hours: Number(r.hours) };
      }
      if (r.start || r.end) {
        if (!r.start) return setError({ field: `${f}.quiet_hours.start`, message: t('bothNeeded') });
        if (!r.end) return setError({ field: `${f}.quiet_hours.end`, message: t('bothNeeded') });
        p.quiet_hours = { start: r.start, end: r.end };
      }
      body.channels[ch] = p;
    }
    setBusy(true);
    try {
      const next = await put('/v1/shop/settings/messaging', body);
      setSaved(true);
      onSaved(next);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const shownFields = (field) => field && /^channels\.[^.]+\.(frequency_cap|quiet_hours\.(start|end)|cost_per_message)$/.test(field) && rows[field.split('.')[1]];
  const names = Object.keys(rows).sort();
  return (
    <form onSubmit={submit} noValidate data-testid="messaging-policies">
      {error && !shownFields(error.field) && <ErrorBox error={{ ...error, message: cleanMessage(error) }} />}
      {names.length === 0 && <p class="state empty">{t('none')}</p>}
      {names.map((ch) => {
        const r = rows[ch];
        const id = `pol-${ch}`;
        const capErr = on(`channels.${ch}.frequency_cap`);
        const startErr = on(`channels.${ch}.quiet_hours.start`);
        const endErr = on(`channels.${ch}.quiet_hours.end`);
        const costErr = on(`channels.${ch}.cost_per_message`);
        return (
          <fieldset class="field policy" data-channel={ch}>
            <legend>
              <span class="badge">{channelName(ch)}</span>
            </legend>
            <div class="policy-grid">
              <fieldset class={`sub ${capErr ? 'has-error' : ''}`}>
                <legend>{t('cap')}</legend>
                <div class="inline-fields">
                  <span class="field">
                    <label for={`${id}-max`}>{t('capMax')}</label>
                    <input id={`${id}-max`} inputMode="numeric" value={r.max} onInput={set(ch, 'max')} aria-invalid={capErr ? 'true' : undefined} aria-describedby={`${id}-cap-note`} />
                  </span>
                  <span class="field">
                    <label for={`${id}-hours`}>{t('capWindow')}</label>
                    <input id={`${id}-hours`} inputMode="numeric" value={r.hours} onInput={set(ch, 'hours')} aria-invalid={capErr ? 'true' : undefined} aria-describedby={`${id}-cap-note`} />
                  </span>
                </div>
                <div id={`${id}-cap-note`} class={capErr ? 'field-error' : 'hint'} role={capErr ? 'alert' : undefined}>
                  {capErr || t('noCap')}
                </div>
              </fieldset>
              <fieldset class={`sub ${startErr || endErr ? 'has-error' : ''}`}>
                <legend>{t('quiet')}</legend>
                <div class="inline-fields">
                  <span class={`field ${startErr ? 'has-error' : ''}`}>
                    <label for={`${id}-start`}>{t('quietFrom')}</label>
                    <input id={`${id}-start`} type="time" value={r.start} onInput={set(ch, 'start')} aria-invalid={startErr ? 'true' : undefined} aria-describedby={`${id}-start-note`} />
                    {startErr && (
                      <span id={`${id}-start-note`} class="field-error" role="alert">
                        {startErr}
                      </span>
                    )}
                  </span>
                  <span class={`field ${endErr ? 'has-error' : ''}`}>
                    <label for={`${id}-end`}>{t('quietTo')}</label>
                    <input id={`${id}-end`} type="time" value={r.end} onInput={set(ch, 'end')} aria-invalid={endErr ? 'true' : undefined} aria-describedby={`${id}-end-note`} />
                    {endErr && (
                      <span id={`${id}-end-note`} class="field-error" role="alert">
                        {endErr}
                      </span>
                    )}
                  </span>
                </div>
                <div class="hint">{t('noQuiet')}</div>
              </fieldset>
              <div class={`field ${costErr ? 'has-error' : ''}`}>
                <label for={`${id}-cost`}>{t('cost', { cur })}</label>
                <input id={`${id}-cost`} inputMode="decimal" value={r.cost} onInput={set(ch, 'cost')} aria-invalid={costErr ? 'true' : undefined} aria-describedby={costErr ? `${id}-cost-err` : undefined} />
                {costErr && (
                  <div id={`${id}-cost-err`} class="field-error" role="alert">
                    {costErr}
                  </div>
                )}
              </div>
            </div>
            <button
              type="button"
              class="link"
              onClick={() => {
                const next = { ...rows };
                delete next[ch];
                setRows(next);
              }}
            >
              {t('remove', { channel: channelName(ch) })}
            </button>
          </fieldset>
        );
      })}
      <div class="toolbar">
        <div class="field">
          <label for="policy-add">{t('add')}</label>
          <input id="policy-add" value={adding} onInput={(e) => setAdding(e.currentTarget.value)} aria-describedby="policy-add-hint" />
          <div class="hint" id="policy-add-hint">
            {t('channelHint')}
          </div>
        </div>
        <button
          type="button"
          onClick={() => {
            const ch = adding.trim().toLowerCase();
            if (!ch || rows[ch]) return;
            setRows({ ...rows, [ch]: { max: '', hours: '', start: '', end: '', cost: toMajor(0) } });
            setAdding('');
          }}
        >
          {t('addButton')}
        </button>
      </div>
      <SaveRow disabled={busy || !can('messages:manage')} label={t('save')} saved={saved} savedLabel={t('saved')} />
    </form>
  );
}

/** One line per channel, for the channel list. */
export function policySummary(t0, p) {
  const t = (k, v) => t0(k, v);
  return t('summary', {
    cap: p.frequency_cap ? t('capSummary', { max: p.frequency_cap.max, hours: p.frequency_cap.window_hours }) : t('uncapped'),
    quiet: p.quiet_hours ? t('quietSummary', { start: p.quiet_hours.start, end: p.quiet_hours.end }) : t('noQuietSummary'),
    cost: money(p.cost_per_message || 0),
  });
}

export const policyStrings = strings;

export function Policies({ state, channels }) {
  const t = useT(strings);
  if (!can('messages:manage')) return <p class="muted">{t('needsScope')}</p>;
  return (
    <Card title={t('title')} id="messaging-policies">
      <p class="muted">{t('intro', { zone: currentShop()?.time_zone || 'UTC' })}</p>
      <Async state={state} isEmpty={() => false}>
        {(settings) => (
          <Editor settings={settings} channels={channels} onSaved={() => state.reload()} />
        )}
      </Async>
    </Card>
  );
}

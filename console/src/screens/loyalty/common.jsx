// What the loyalty, messages and plugins screens share: a form's submit/cancel row, a save row
// with its "saved" note, the look-up of a customer by id, and the words for the API's codes
// (channels, message sources) in both languages.
import { useState } from 'preact/hooks';
import { translate, useT } from '../../i18n.js';
import { href } from '../../router.js';
import { currentLocale, currentShop } from '../../session.js';
import { Async, Card, Dialog, Field } from '../../ui.jsx';
import { errorOn } from '../plugins/schema-form.jsx';

const strings = {
  en: {
    profile: 'Open the customer’s profile',
    customerId: 'Customer id',
    sms: 'SMS',
    email: 'E-mail',
    webhook: 'Webhook',
    wechat: 'WeChat',
    push: 'Push',
    api: 'API',
    console: 'Console',
    journey: 'Journey',
    plugin: 'Plugin',
    import: 'Import',
    system: 'System',
    manual: 'By hand',
  },
  'zh-CN': {
    profile: '打开客户详情',
    customerId: '客户 ID',
    sms: '短信',
    email: '邮件',
    webhook: 'Webhook',
    wechat: '微信',
    push: '推送',
    api: 'API',
    console: '控制台',
    journey: '营销流程',
    plugin: '插件',
    import: '导入',
    system: '系统',
    manual: '手动',
  },
};

const CHANNELS = ['sms', 'email', 'webhook', 'wechat', 'push'];

/** A channel's name (`sms` → SMS / 短信); a channel the console does not know stays as it is. */
export function channelName(channel) {
  if (!channel) return '—';
  return CHANNELS.includes(channel) ? translate(strings, channel) : channel;
}

/** Where a message or a consent came from (`journey:12` → Journey 12, `api` → API). */
export function sourceName(source) {
  if (!source) return '—';
  const [head, ...rest] = String(source).split(':');
  if (!['api', 'console', 'journey', 'plugin', 'import', 'system', 'manual'].includes(head)) return source;
  return rest.length ? `${translate(strings, head)} ${rest.join(':')}` : translate(strings, head);
}

/** One major unit of the shop's currency, as a price (`¥1`, `US$1`, `€1`). */
export function oneUnit() {
  const currency = currentShop()?.currency || 'CNY';
  try {
    return new Intl.NumberFormat(currentLocale(), { style: 'currency', currency, minimumFractionDigits: 0, maximumFractionDigits: 0 }).format(1);
  } catch {
    return `1 ${currency}`;
  }
}

/** `12` → 12; anything but a whole number → NaN. */
export const wholeNumber = (s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : NaN);

/**
 * A form's state: its fields `f` (`set('name')` is an input's handler), the error to show, and
 * `run(write)`, which is busy while the write runs and keeps its error; `onSubmit(check)` for the form.
 */
export function useForm(init) {
  const [f, setF] = useState(init);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const run = async (write) => {
    setBusy(true);
    setError(null);
    try {
      await write();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  /** A submit handler: the browser's own submit stopped, the last error cleared, then `check()`. */
  const onSubmit = (check) => (e) => {
    e.preventDefault();
    setError(null);
    return check();
  };
  return { f, setF, set, error, setError, busy, run, onSubmit };
}

/** A labelled input for the API field `name`, showing the form's `error` when it names that field. */
export function InputField({ label, error, name, ...input }) {
  return <Field label={label} error={errorOn(error, name)}>{(p) => <input {...p} name={name} {...input} />}</Field>;
}

/** A form's last row: submit (disabled while busy) and cancel; before it, the "active" checkbox when given. */
export function FormActions({ busy, label, cancel, onCancel, active, onActive, activeLabel }) {
  return (
    <>
      {onActive && (
        <label class="inline">
          <input type="checkbox" name="active" checked={active} onChange={onActive} /> {activeLabel}
        </label>
      )}
      <div class="actions form-actions">
      <button type="submit" class="primary" disabled={busy}>
        {label}
      </button>
        <button type="button" onClick={onCancel}>
          {cancel}
        </button>
      </div>
    </>
  );
}

/** A form's save row: the submit button, then "saved" once it was. */
export function SaveRow({ disabled, label, saved, savedLabel }) {
  return (
    <div class="actions">
      <button type="submit" class="primary" disabled={disabled}>
        {label}
      </button>
      {saved && (
        <span class="badge good" role="status">
          {savedLabel}
        </span>
      )}
    </div>
  );
}

/**
 * A customer-id look-up (`value` is the text typed, `id` the customer looked up or null), then,
 * for a customer, the link to the profile and `children`; without one, `prompt`.
 */
export function CustomerLookup({ value, onInput, onSubmit, button, hint, prompt, id, children }) {
  const t = useT(strings);
  return (
    <>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(value.trim());
        }}
      >
        <Field label={t('customerId')} hint={hint}>
          {(p) => <input {...p} name="customer" inputMode="numeric" value={value} onInput={(e) => onInput(e.currentTarget.value)} />}
        </Field>
        <button type="submit">{button}</button>
      </form>
      {!id && <p class="state empty">{prompt}</p>}
      {id && (
        <>
          <p>
            <a href={href(`/customers/${id}`)}>{t('profile')}</a>
          </p>
          {children}
        </>
      )}
    </>
  );
}

/**
 * A card listing `state`'s items (`table(items, edit)`), with a "new" button for a role that may
 * `manage`, and a dialog holding `form(item or null for a new one, close, saved)` while one is
 * edited (`saved()` closes it and reloads the list).
 */
export function EditableList({ title, id, manage, newLabel, newDisabled, state, empty, dialogTitle, table, form, children }) {
  const [editing, setEditing] = useState(null); // null: closed, 'new', or the item
  const close = () => setEditing(null);
  const item = editing === 'new' ? null : editing;
  return (
    <Card
      title={title}
      id={id}
      actions={
        manage && (
          <button type="button" class="primary" onClick={() => setEditing('new')} disabled={newDisabled}>
            {newLabel}
          </button>
        )
      }
    >
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={empty}>
        {(data) => table(data.items, setEditing)}
      </Async>
      {children}
      <Dialog open={editing !== null} title={editing === null ? '' : dialogTitle(item)} onClose={close}>
        {editing !== null &&
          form(item, close, () => {
            close();
            state.reload();
          })}
      </Dialog>
    </Card>
  );
}

/** A row's "Edit" link-button, named after the row for screen readers. */
export function EditButton({ onClick, text, label }) {
  return (
    <button type="button" class="link" onClick={onClick} aria-label={label}>
      {text}
    </button>
  );
}

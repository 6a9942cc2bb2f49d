// A form generated from a plugin's configuration schema (JSON Schema, the subset manifests use):
// objects, strings, numbers, integers, booleans, enums, arrays of scalars and arrays of objects,
// labelled from `title` (else the property's name) with `description` as the hint, `default` as
// the placeholder, `required` marked. The API's error lands on the field it names
// (`config.threshold`, `config.tiers[1].name`); a field the form does not show gets the error on top.
//
// Also the small helpers the loyalty, messages and plugins screens share: the error of a field.
import { useRef } from 'preact/hooks';
import { useT } from '../../i18n.js';
import { toMajor, toMinor } from '../../format.js';
import { currentShop } from '../../session.js';

const strings = {
  en: {
    required: 'required',
    add: 'Add',
    remove: 'Remove',
    item: 'Item {n}',
    secretSet: 'Stored, never shown. Leave empty to keep it.',
    secret: 'Secret: stored, never shown again.',
    list: 'Separate values with commas.',
    range: 'From {min} to {max}.',
    min: 'At least {min}.',
    max: 'At most {max}.',
    yes: 'Yes',
    no: 'No',
    unset: '(default)',
  },
  'zh-CN': {
    required: '必填',
    add: '添加',
    remove: '删除',
    item: '第 {n} 项',
    secretSet: '已保存，不会显示。留空则保持不变。',
    secret: '密钥：保存后不再显示。',
    list: '多个值用逗号分隔。',
    range: '取值 {min} 到 {max}。',
    min: '至少 {min}。',
    max: '至多 {max}。',
    yes: '是',
    no: '否',
    unset: '（默认）',
  },
};

/** The message of `error` (an ApiError) when it names `field`, without the field repeated in front. */
export function errorOn(error, field) {
  if (!error || !error.field || error.field !== field) return null;
  return cleanMessage(error);
}

/** The API's message without its `field: ` prefix. */
export function cleanMessage(error) {
  const msg = error.message || '';
  if (error.field && msg.startsWith(`${error.field}: `)) return msg.slice(error.field.length + 2);
  return msg;
}

/** `window_days` → `Window days`. */
const ACRONYMS = new Set(['url', 'api', 'id', 'sms', 'aov', 'clv', 'http', 'uri']);
export function humanize(name) {
  const s = String(name)
    .replace(/[_-]+/g, ' ')
    .trim()
    .split(' ')
    .map((w) => (ACRONYMS.has(w.toLowerCase()) ? w.toUpperCase() : w))
    .join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function typeOf(schema) {
  if (!schema) return 'string';
  const t = Array.isArray(schema.type) ? schema.type.find((x) => x !== 'null') : schema.type;
  if (t) return t;
  if (schema.enum) return typeof schema.enum[0] === 'number' ? 'number' : typeof schema.enum[0] === 'boolean' ? 'boolean' : 'string';
  if (schema.properties) return 'object';
  if (schema.items) return 'array';
  return 'string';
}

function isSecret(schema) {
  return !!schema && (schema.writeOnly === true || schema.format === 'secret' || schema.format === 'password');
}

/** Is `field` (e.g. `config.tiers[0].name`) one the form shows for `schema` under `prefix`? */
export function shownPath(schema, prefix, field) {
  if (!field) return false;
  if (field === prefix) return typeOf(schema) !== 'object';
  if (!field.startsWith(prefix)) return false;
  const t = typeOf(schema);
  const rest = field.slice(prefix.length);
  if (t === 'object') {
    const m = /^\.([^.[]+)/.exec(rest);
    if (!m || !schema.properties || !schema.properties[m[1]]) return false;
    return shownPath(schema.properties[m[1]], `${prefix}.${m[1]}`, field);
  }
  if (t === 'array') {
    const m = /^\[(\d+)\]/.exec(rest);
    if (!m) return false;
    if (typeOf(schema.items) !== 'object') return true; // shown on the list's field
    return shownPath(schema.items, `${prefix}[${m[1]}]`, field);
  }
  return false;
}

/** The configuration a form starts from: the current one, else the schema's defaults. */
export function initialValue(schema, current) {
  if (current && typeof current === 'object' && Object.keys(current).length) return structuredClone(current);
  const out = {};
  for (const [name, prop] of Object.entries((schema && schema.properties) || {})) {
    if (prop.default !== undefined) out[name] = structuredClone(prop.default);
  }
  return out;
}

function fromText(text, schema) {
  const t = typeOf(schema);
  const s = String(text).trim();
  if (s === '') return undefined;
  if (t === 'integer' || t === 'number') {
    const n = Number(s);
    return Number.isFinite(n) ? n : s; // not a number: sent as is, the API names the field
  }
  if (t === 'boolean') return s === 'true';
  return text;
}

function rangeHint(t, schema) {
  const min = schema.minimum ?? schema.exclusiveMinimum;
  const max = schema.maximum ?? schema.exclusiveMaximum;
  if (min !== undefined && max !== undefined) return t('range', { min, max });
  if (min !== undefined) return t('min', { min });
  if (max !== undefined) return t('max', { max });
  return null;
}

/** A field's label: its title, a required mark, and the property's name. */
function Label({ id, label, required, name }) {
  const t = useT(strings);
  return (
    <label for={id}>
      {label}
      {required && <span class="req"> * <span class="sr-only">{t('required')}</span></span>}
      <span class="mono muted small"> {name}</span>
    </label>
  );
}

/** Under a control: its error when it has one, else its hint. */
function Note({ id, message, parts }) {
  if (!message) return <Hint id={`${id}-hint`} parts={parts} />;
  return (
    <div class="field-error" id={`${id}-err`} role="alert">
      {message}
    </div>
  );
}

function Hint({ id, parts }) {
  const text = parts
    .filter(Boolean)
    .map((p) => (/[.。!?)）]$/.test(p) ? p : `${p}.`))
    .join(' ');
  if (!text) return null;
  return (
    <div class="hint" id={id}>
      {text}
    </div>
  );
}

let seq = 0;
const nextId = () => `sf${++seq}`;

/** A scalar: string, number, integer, boolean or an enum of them. */
function Scalar({ name, schema, value, onChange, path, error, required, secretStored, idBase }) {
  const t = useT(strings);
  const id = `${idBase}-${path.replace(/[^a-zA-Z0-9]+/g, '-')}`;
  const type = typeOf(schema);
  const label = schema.title || humanize(name);
  const message = errorOn(error, path);
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const describedBy = message ? errId : hintId;
  const common = { id, name: path, 'aria-invalid': message ? 'true' : undefined, 'aria-describedby': describedBy, 'aria-required': required ? 'true' : undefined, 'data-path': path };
  const secret = isSecret(schema);
  const hintParts = [schema.description, (type === 'integer' || type === 'number') && rangeHint(t, schema), secret && (secretStored ? t('secretSet') : t('secret'))];
  let control;
  if (type === 'boolean' && !schema.enum && !required && schema.default === undefined) {
    control = (
      <select {...common} value={value === undefined ? '' : String(value)} onChange={(e) => onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value === 'true')}>
        <option value="">{t('unset')}</option>
        <option value="true">{t('yes')}</option>
        <option value="false">{t('no')}</option>
      </select>
    );
  } else if (type === 'boolean' && !schema.enum) {
    return (
      <div class={`field check ${message ? 'has-error' : ''}`}>
        <label class="inline">
          <input type="checkbox" {...common} checked={value === undefined ? schema.default === true : !!value} onChange={(e) => onChange(e.currentTarget.checked)} />{' '}
          {label}
          {required && <span class="req" aria-hidden="true"> *</span>}
        </label>
        <Note id={id} message={message} parts={hintParts} />
      </div>
    );
  }
  else if (schema.enum) {
    control = (
      <select {...common} value={value === undefined ? '' : String(value)} onChange={(e) => onChange(e.currentTarget.value === '' ? undefined : schema.enum.find((v) => String(v) === e.currentTarget.value))}>
        {!required && <option value="">{schema.default !== undefined ? `${t('unset')} ${schema.default}` : t('unset')}</option>}
        {required && value === undefined && <option value="" />}
        {schema.enum.map((v) => (
          <option value={String(v)}>{String(v)}</option>
        ))}
      </select>
    );
  } else if (type === 'integer' && /minor units/i.test(schema.description || '')) {
    // An amount of money in minor units: typed in the shop's currency, sent in minor units.
    const cur = currentShop()?.currency || 'CNY';
    control = (
      <span class="money-input">
        <input
          type="text"
          inputMode="decimal"
          {...common}
          value={value === undefined ? '' : typeof value === 'number' ? toMajor(value) : String(value)}
          onChange={(e) => {
            const raw = e.currentTarget.value.trim();
            if (raw === '') return onChange(undefined);
            const minor = toMinor(raw);
            onChange(Number.isNaN(minor) ? raw : minor);
          }}
        />{' '}
        <span class="muted">{cur}</span>
      </span>
    );
  } else if (type === 'integer' || type === 'number') {
    control = (
      <input
        type="text"
        inputMode={type === 'integer' ? 'numeric' : 'decimal'}
        {...common}
        value={value === undefined ? '' : String(value)}
        placeholder={schema.default !== undefined ? String(schema.default) : undefined}
        onInput={(e) => onChange(fromText(e.currentTarget.value, schema))}
      />
    );
  } else {
    control = (
      <input
        type={secret ? 'password' : schema.format === 'uri' ? 'url' : 'text'}
        autoComplete={secret ? 'new-password' : 'off'}
        {...common}
        value={value === undefined ? '' : String(value)}
        placeholder={schema.default !== undefined ? String(schema.default) : undefined}
        onInput={(e) => onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)}
      />
    );
  }
  return (
    <div class={`field ${message ? 'has-error' : ''}`}>
      <Label id={id} label={label} required={required} name={name} />
      {control}
      <Note id={id} message={message} parts={hintParts} />
    </div>
  );
}

/** An array of scalars: checkboxes for an enum, else one text input of comma-separated values. */
function ScalarList({ name, schema, value, onChange, path, error, required, idBase }) {
  const t = useT(strings);
  const id = `${idBase}-${path.replace(/[^a-zA-Z0-9]+/g, '-')}`;
  const items = schema.items || {};
  const label = schema.title || humanize(name);
  const message = error && error.field && (error.field === path || error.field.startsWith(`${path}[`)) ? cleanMessage(error) : null;
  const list = Array.isArray(value) ? value : [];
  if (items.enum) {
    return (
      <fieldset class={`field ${message ? 'has-error' : ''}`} data-path={path}>
        <legend>
          {label}
          {required && <span class="req"> *</span>}
        </legend>
        {items.enum.map((v) => (
          <label class="inline">
            <input
              type="checkbox"
              checked={list.includes(v)}
              onChange={(e) => onChange(e.currentTarget.checked ? [...list, v] : list.filter((x) => x !== v))}
            />{' '}
            {String(v)}
          </label>
        ))}
        <Hint id={`${id}-hint`} parts={[schema.description]} />
        {message && (
          <div class="field-error" role="alert">
            {message}
          </div>
        )}
      </fieldset>
    );
  }
  const text = value === undefined ? '' : Array.isArray(value) ? value.join(', ') : String(value);
  return (
    <div class={`field ${message ? 'has-error' : ''}`}>
      <Label id={id} label={label} required={required} name={name} />
      <input
        id={id}
        name={path}
        data-path={path}
        type="text"
        value={text}
        aria-invalid={message ? 'true' : undefined}
        aria-describedby={message ? `${id}-err` : `${id}-hint`}
        placeholder={schema.default !== undefined ? [].concat(schema.default).join(', ') : undefined}
        onInput={(e) => {
          const raw = e.currentTarget.value;
          if (raw.trim() === '') return onChange(undefined);
          onChange(raw.split(/[,，]/).map((s) => s.trim()).filter((s) => s !== '').map((s) => fromText(s, items)));
        }}
      />
      <Note id={id} message={message} parts={[schema.description, t('list'), (typeOf(items) === 'integer' || typeOf(items) === 'number') && rangeHint(t, items)]} />
    </div>
  );
}

/** An array of objects: one fieldset per item, with add and remove. */
function ObjectList({ name, schema, value, onChange, path, error, required, idBase }) {
  const t = useT(strings);
  const list = Array.isArray(value) ? value : [];
  const label = schema.title || humanize(name);
  const message = error && error.field === path ? cleanMessage(error) : null;
  return (
    <fieldset class={`field group ${message ? 'has-error' : ''}`} data-path={path}>
      <legend>
        {label}
        {required && <span class="req"> *</span>}
      </legend>
      {schema.description && <div class="hint">{schema.description}</div>}
      {list.map((item, i) => (
        <fieldset class="item">
          <legend>{t('item', { n: i + 1 })}</legend>
          <Properties
            schema={schema.items}
            value={item || {}}
            onChange={(v) => onChange(list.map((x, j) => (j === i ? v : x)))}
            path={`${path}[${i}]`}
            error={error}
            idBase={idBase}
          />
          <button type="button" class="link" onClick={() => onChange(list.filter((_, j) => j !== i))}>
            {t('remove')} {t('item', { n: i + 1 })}
          </button>
        </fieldset>
      ))}
      <button type="button" onClick={() => onChange([...list, initialValue(schema.items, null)])}>
        {t('add')}: {label}
      </button>
      {message && (
        <div class="field-error" role="alert">
          {message}
        </div>
      )}
    </fieldset>
  );
}

function Node({ name, schema, value, onChange, path, error, required, secretStored, idBase }) {
  const type = typeOf(schema);
  const props = { name, schema, value, onChange, path, error, required, idBase };
  if (type === 'object') {
    const message = error && error.field === path ? cleanMessage(error) : null;
    return (
      <fieldset class="field group" data-path={path}>
        <legend>{schema.title || humanize(name)}</legend>
        {schema.description && <div class="hint">{schema.description}</div>}
        <Properties schema={schema} value={value || {}} onChange={onChange} path={path} error={error} idBase={idBase} />
        {message && (
          <div class="field-error" role="alert">
            {message}
          </div>
        )}
      </fieldset>
    );
  }
  if (type === 'array') return typeOf(schema.items) === 'object' ? <ObjectList {...props} /> : <ScalarList {...props} />;
  return <Scalar {...props} secretStored={secretStored} />;
}

function Properties({ schema, value, onChange, path, error, idBase, secretsStored }) {
  const required = new Set((schema && schema.required) || []);
  const entries = Object.entries((schema && schema.properties) || {});
  // Required first, then in the schema's order.
  entries.sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  return entries.map(([name, prop]) => (
    <Node
      key={name}
      name={name}
      schema={prop}
      value={value ? value[name] : undefined}
      required={required.has(name)}
      secretStored={!!(secretsStored && secretsStored.includes(name))}
      path={`${path}.${name}`}
      error={error}
      idBase={idBase}
      onChange={(v) => {
        const next = { ...(value || {}) };
        if (v === undefined) delete next[name];
        else next[name] = v;
        onChange(next);
      }}
    />
  ));
}

/**
 * The form for `schema` (an object schema) over `value`; `onChange(next)` with the whole value.
 * `error` is the API's ApiError; its field is matched under `prefix` (default `config`).
 * `secretsStored`: names of secret properties the shop already set (they are never read back).
 */
export function SchemaForm({ schema, value, onChange, error, prefix = 'config', secretsStored, idBase }) {
  const ref = useRef(null);
  if (!ref.current) ref.current = idBase || nextId();
  const base = ref.current;
  if (!schema || typeOf(schema) !== 'object' || !schema.properties || Object.keys(schema.properties).length === 0) return null;
  return (
    <div class="schema-form" data-prefix={prefix}>
      <Properties schema={schema} value={value} onChange={onChange} path={prefix} error={error} idBase={base} secretsStored={secretsStored} />
    </div>
  );
}

/** Secret property names (`writeOnly`, `format: secret|password`) at the top of a schema. */
export function secretNames(schema) {
  return Object.entries((schema && schema.properties) || {})
    .filter(([, p]) => isSecret(p))
    .map(([n]) => n);
}

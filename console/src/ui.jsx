// The pieces every screen is made of: data loading with its loading, empty and error states,
// tables, cards, form fields that show the API's error on the field at fault.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { get } from './api.js';
import { useT } from './i18n.js';

const strings = {
  en: { loading: 'Loading…', retry: 'Retry', empty: 'Nothing here yet.', error: 'Something went wrong', forbidden: 'Your role may not see this.', close: 'Close' },
  'zh-CN': { loading: '加载中…', retry: '重试', empty: '暂无数据。', error: '出错了', forbidden: '您的角色无权查看此内容。', close: '关闭' },
};

/**
 * Load `path` (with `query`) and keep it fresh when either changes; `path` null waits.
 * Answers `{data, error, loading, reload}`.
 */
export function useApi(path, query) {
  const key = path === null ? null : `${path}?${JSON.stringify(query || {})}`;
  const [state, setState] = useState({ data: undefined, error: null, loading: key !== null });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    if (key === null) {
      setState({ data: undefined, error: null, loading: false });
      return undefined;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    get(path, query, { signal: ctl.signal }).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => {
        if (error.name !== 'AbortError') setState({ data: undefined, error, loading: false });
      },
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, tick]);
  return { ...state, reload };
}

export function Loading({ label }) {
  const t = useT(strings);
  return (
    <div class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label || t('loading')}
    </div>
  );
}

export function ErrorBox({ error, onRetry }) {
  const t = useT(strings);
  if (!error) return null;
  const text = error.status === 403 ? t('forbidden') : error.message || t('error');
  return (
    <div class="state error" role="alert">
      <strong>{t('error')}</strong>: {text}
      {onRetry && (
        <button type="button" class="link" onClick={onRetry}>
          {t('retry')}
        </button>
      )}
    </div>
  );
}

export function Empty({ children }) {
  const t = useT(strings);
  return <div class="state empty">{children || t('empty')}</div>;
}

/**
 * The three states of a load, then `children(data)`. `isEmpty(data)` (default: an empty list)
 * shows `empty` instead.
 */
export function Async({ state, children, empty, isEmpty }) {
  if (state.error) return <ErrorBox error={state.error} onRetry={state.reload} />;
  if (state.loading && state.data === undefined) return <Loading />;
  if (state.data === undefined) return null;
  const none = isEmpty ? isEmpty(state.data) : Array.isArray(state.data) && state.data.length === 0;
  if (none) return <Empty>{empty}</Empty>;
  return children(state.data);
}

export function Card({ title, children, actions, class: cls, id }) {
  return (
    <section class={`card ${cls || ''}`} aria-labelledby={id ? `${id}-title` : undefined}>
      {(title || actions) && (
        <header class="card-head">
          {title && <h2 id={id ? `${id}-title` : undefined}>{title}</h2>}
          {actions && <div class="actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

/** A KPI: a label, a value, and the change against the previous range. */
export function Stat({ label, value, change, testid }) {
  const dir = change === null || change === undefined ? '' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  return (
    <div class="stat" data-testid={testid}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {change !== null && change !== undefined && (
        <div class={`stat-change ${dir}`}>
          {change > 0 ? '▲' : change < 0 ? '▼' : '•'} {(Math.abs(change) * 100).toFixed(1)}%
        </div>
      )}
    </div>
  );
}

/** `columns`: [{key, label, render?(row), class?}]. */
export function Table({ columns, rows, caption, rowKey, onRowClick }) {
  return (
    <div class="table-wrap">
      <table>
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" class={c.class}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={rowKey ? rowKey(row) : i} class={onRowClick ? 'clickable' : undefined} onClick={onRowClick ? () => onRowClick(row) : undefined}>
              {columns.map((c) => (
                <td class={c.class}>{c.render ? c.render(row) : row[c.key]}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

let fieldSeq = 0;
/** A labelled control; `error` (text) is shown under it and tied to it for screen readers. */
export function Field({ label, error, hint, children, id: given }) {
  const idRef = useRef(given || `f${++fieldSeq}`);
  const id = idRef.current;
  const child = typeof children === 'function' ? children({ id, 'aria-invalid': error ? 'true' : undefined, 'aria-describedby': error ? `${id}-err` : hint ? `${id}-hint` : undefined }) : children;
  return (
    <div class={`field ${error ? 'has-error' : ''}`}>
      <label for={id}>{label}</label>
      {child}
      {hint && !error && (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {error && (
        <div class="field-error" id={`${id}-err`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

export function Tabs({ tabs, active, onChange, label }) {
  return (
    <div class="tabs" role="tablist" aria-label={label}>
      {tabs.map((tab) => (
        <button type="button" role="tab" aria-selected={tab.id === active ? 'true' : 'false'} class={tab.id === active ? 'active' : ''} onClick={() => onChange(tab.id)}>
          {tab.label}
        </button>
      ))}
    </div>
  );
}

/** A modal dialog on the native <dialog>: focus is trapped and Escape closes it. */
export function Dialog({ open, title, onClose, children }) {
  const ref = useRef(null);
  const t = useT(strings);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog" aria-label={title} onClose={onClose} onCancel={onClose}>
      <header class="card-head">
        <h2>{title}</h2>
        <button type="button" class="link" onClick={onClose} aria-label={t('close')}>
          ✕
        </button>
      </header>
      {open && children}
    </dialog>
  );
}

/** Horizontal bars for a distribution (accessible as a list). `items`: [{label, value, display?}]. */
export function Bars({ items, label }) {
  const max = Math.max(1, ...items.map((i) => i.value || 0));
  return (
    <ul class="bars" aria-label={label}>
      {items.map((i) => (
        <li>
          <span class="bar-label">{i.label}</span>
          <span class="bar-track" aria-hidden="true">
            <span class="bar-fill" style={{ width: `${((i.value || 0) / max) * 100}%` }} />
          </span>
          <span class="bar-value">{i.display ?? i.value}</span>
        </li>
      ))}
    </ul>
  );
}

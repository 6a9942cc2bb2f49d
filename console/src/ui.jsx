// The pieces every screen is made of: data loading with its loading, empty and error states,
// tables, cards, form fields that show the API's error on the field at fault.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get } from './api.js';
import { useT } from './i18n.js';
import { percent } from './format.js';

const strings = {
  en: {
    loading: 'Loading…',
    retry: 'Retry',
    empty: 'Nothing here yet.',
    error: 'Something went wrong',
    close: 'Close',
    forbidden: 'Your role may not do this.',
    unauthorized: 'Your session has ended: sign in again.',
    csrf: 'This page is out of date with your session: reload it.',
    'not-found': 'Not found: it may have been deleted.',
    conflict: 'It changed meanwhile, or clashes with something that exists.',
    locked: 'Too many failed attempts: try again in {minutes} min.',
    busy: 'The kernel is busy: try again in {seconds} s.',
    internal: 'The kernel failed to answer. Try again; if it persists, tell your administrator (request {id}).',
    network: 'The kernel cannot be reached. Check your connection and try again.',
    up: 'up',
    down: 'down',
    flat: 'unchanged',
    vsPrevious: 'against the previous range',
  },
  'zh-CN': {
    loading: '加载中…',
    retry: '重试',
    empty: '暂无数据。',
    error: '出错了',
    close: '关闭',
    forbidden: '您的角色无权执行此操作。',
    unauthorized: '登录已失效，请重新登录。',
    csrf: '页面与当前登录不一致，请刷新页面。',
    'not-found': '未找到，可能已被删除。',
    conflict: '内容已被修改，或与已有内容冲突。',
    locked: '失败次数过多，请 {minutes} 分钟后再试。',
    busy: '系统繁忙，请 {seconds} 秒后再试。',
    internal: '系统未能完成请求。请重试；如仍失败，请联系管理员（请求编号 {id}）。',
    network: '无法连接系统，请检查网络后重试。',
    up: '上升',
    down: '下降',
    flat: '持平',
    vsPrevious: '与上一周期相比',
  },
};

/**
 * What to tell a person about a failed request, in the console's language: the kinds of problem
 * every screen meets (no permission, session over, locked, busy, a failure of the kernel) have
 * words of their own; a refusal of what was asked (400, 409, 403 with a reason) keeps the API's
 * detail, which names what is wrong.
 */
export function useProblemText() {
  const t = useT(strings);
  return (error) => {
    if (!error) return '';
    if (!(error instanceof ApiError)) return error.name === 'TypeError' ? t('network') : error.message || t('error');
    const kind = error.kind;
    if (error.status === 401) return t('unauthorized');
    if (kind === 'csrf') return t('csrf');
    if (kind === 'locked') return t('locked', { minutes: Math.max(1, Math.ceil((error.retryAfter || 900) / 60)) });
    if (error.status === 429 || error.status === 503) return t('busy', { seconds: error.retryAfter || 5 });
    if (error.status >= 500) return t('internal', { id: (error.problem && error.problem.request_id) || '—' });
    if (error.status === 403) return error.problem && error.problem.detail ? `${t('forbidden')} (${error.problem.detail})` : t('forbidden');
    if (error.status === 404 && !error.field) return t('not-found');
    return error.message || t('error');
  };
}

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
  const problemText = useProblemText();
  if (!error) return null;
  const text = problemText(error);
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
  const t = useT(strings);
  const dir = change === null || change === undefined ? '' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  return (
    <div class="stat" data-testid={testid}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {change !== null && change !== undefined && (
        <div class={`stat-change ${dir}`}>
          <span aria-hidden="true">{change > 0 ? '▲' : change < 0 ? '▼' : '•'}</span>
          <span class="sr-only">{t(dir)}</span> {percent(Math.abs(change))}
          <span class="sr-only"> {t('vsPrevious')}</span>
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

/**
 * Tabs with the keyboard pattern of WAI-ARIA's tabs: one tab stop (the selected tab), the arrow
 * keys, Home and End move between tabs and select them.
 */
export function Tabs({ tabs, active, onChange, label }) {
  const ref = useRef(null);
  const onKeyDown = (e) => {
    const i = tabs.findIndex((tab) => tab.id === active);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const j = (next + tabs.length) % tabs.length;
    onChange(tabs[j].id);
    const buttons = ref.current ? ref.current.querySelectorAll('[role="tab"]') : [];
    if (buttons[j]) buttons[j].focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} ref={ref} onKeyDown={onKeyDown}>
      {tabs.map((tab) => (
        <button
          type="button"
          role="tab"
          aria-selected={tab.id === active ? 'true' : 'false'}
          tabIndex={tab.id === active ? 0 : -1}
          class={tab.id === active ? 'active' : ''}
          onClick={() => onChange(tab.id)}
        >
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

// What the segments and journeys screens share: a definition's versions, a cursor-paged list, a
// warning before unsaved changes are left, a download fetched through the API.
import { useEffect, useRef, useState } from 'preact/hooks';
import { request } from '../../api.js';
import { useT } from '../../i18n.js';
import { dateTime } from '../../format.js';
import { Async, Card, Table, useApi } from '../../ui.jsx';
import { href } from '../../router.js';

const strings = {
  en: {
    version: 'Version',
    created: 'Created',
    createdBy: 'By',
    definition: 'Definition',
    versions: 'Versions',
    next: 'Next page',
    prev: 'Previous page',
    leave: 'You have unsaved changes. Leave without saving?',
  },
  'zh-CN': {
    version: '版本',
    created: '创建时间',
    createdBy: '操作者',
    definition: '定义',
    versions: '版本',
    next: '下一页',
    prev: '上一页',
    leave: '有未保存的修改，确定不保存就离开吗？',
  },
};

/**
 * A list screen: its title, a "new" button for a role that may create (`create`: {path, label,
 * testid}), and the API's list at `path` as a table of `columns`, each row keyed by its id.
 */
export function ListPage({ title, create, path, empty, caption, columns }) {
  const state = useApi(path);
  return (
    <>
      <div class="page-head">
        <h1>{title}</h1>
        {create && (
          <a class="button primary" href={href(create.path)} data-testid={create.testid}>
            {create.label}
          </a>
        )}
      </div>
      <Card>
        <Async state={{ ...state, data: state.data && state.data.items }} empty={empty}>
          {(items) => <Table caption={caption} rowKey={(x) => x.id} columns={columns} rows={items} />}
        </Async>
      </Card>
    </>
  );
}

/**
 * A definition's versions, newest first, each with its JSON; `loadLabel` and `onLoad(version)`
 * (when given) add a button putting that version back into the editor.
 */
export function VersionsTable({ path, loadLabel, onLoad }) {
  const t = useT(strings);
  const state = useApi(path);
  const columns = [
    { key: 'version', label: t('version'), render: (v) => `v${v.version}` },
    { key: 'created', label: t('created'), render: (v) => dateTime(v.created_at) },
    { key: 'by', label: t('createdBy'), render: (v) => <span class="mono">{v.created_by}</span> },
    {
      key: 'def',
      label: t('definition'),
      render: (v) => (
        <details>
          <summary>JSON</summary>
          <pre class="mono seg-json">{JSON.stringify(v.definition, null, 2)}</pre>
        </details>
      ),
    },
  ];
  if (onLoad) {
    columns.push({
      key: 'load',
      label: <span class="sr-only">{loadLabel}</span>,
      render: (v) => (
        <button type="button" class="link" onClick={() => onLoad(v)}>
          {loadLabel}
        </button>
      ),
    });
  }
  return (
    <Async state={{ ...state, data: state.data && [...state.data.items].reverse() }}>
      {(items) => <Table caption={t('versions')} rowKey={(v) => v.version} columns={columns} rows={items} />}
    </Async>
  );
}

/**
 * A list read page by page with the API's `next_cursor`: `children(page)` shows one page, then
 * the previous/next buttons. `query` is sent with every page.
 */
export function Paged({ path, query, empty, children, label }) {
  const t = useT(strings);
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const state = useApi(path, { ...(query || {}), cursor });
  return (
    <Async state={state} isEmpty={(d) => d.items.length === 0 && cursors.length < 2} empty={empty}>
      {(page) => (
        <>
          {children(page)}
          <nav class="actions pager" aria-label={label}>
            <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
              {t('prev')}
            </button>
            <button type="button" disabled={!page.next_cursor} onClick={() => setCursors([...cursors, page.next_cursor])}>
              {t('next')}
            </button>
          </nav>
        </>
      )}
    </Async>
  );
}

const pathOf = (url) => (new URL(url).hash.replace(/^#/, '') || '/').split('?')[0];

/**
 * While `dirty`, leaving asks first: closing or reloading the tab (the browser's own warning) and
 * a move to another screen of the console (back, forward, a link). Answers `release()`, to call
 * before a navigation of the editor's own (after saving) that must not ask. With `samePath`, a
 * move that keeps the address's path (another tab of the same screen, the editor kept) does not ask.
 */
export function useLeaveGuard(dirty, { samePath = false } = {}) {
  const t = useT(strings);
  const state = useRef({ dirty, released: false, href: location.href, message: '' });
  state.current.dirty = dirty;
  state.current.message = t('leave');
  useEffect(() => {
    const s = state.current;
    s.href = location.href;
    const onBeforeUnload = (e) => {
      if (!s.dirty || s.released) return undefined;
      e.preventDefault();
      e.returnValue = s.message;
      return s.message;
    };
    // `popstate` comes before `hashchange`, which the router follows: put the address back when
    // the user stays, and the router finds the same screen.
    const onPopState = () => {
      const leaving = samePath ? pathOf(location.href) !== pathOf(s.href) : location.href !== s.href;
      if (s.dirty && !s.released && leaving && !window.confirm(s.message)) {
        history.replaceState(history.state, '', s.href);
        return;
      }
      s.href = location.href;
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    window.addEventListener('popstate', onPopState);
    return () => {
      window.removeEventListener('beforeunload', onBeforeUnload);
      window.removeEventListener('popstate', onPopState);
    };
  }, []);
  return () => {
    state.current.released = true;
  };
}

/**
 * A file from the API (`GET path` with `query`), saved as `filename`: fetched first, so that a
 * refusal is shown as an error, not downloaded as the file. Answers `{busy, error, download}`.
 * The whole file is held in memory (a Blob) before it is saved; enough for a segment's CSV today,
 * a very large export would rather stream to disk.
 */
export function useDownload() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const download = async (path, query, filename) => {
    setBusy(true);
    setError(null);
    try {
      const blob = await request('GET', path, { query, as: 'blob', headers: { accept: 'text/csv, application/problem+json' } });
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, download };
}

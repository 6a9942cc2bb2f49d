// Segments (人群圈选): the list with member counts; the builder with the live count; a segment's
// members, daily counts, snapshots and versions; export where the role and the shop's policy allow.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { del, post, put } from '../api.js';
import { useT } from '../i18n.js';
import { navigate, href } from '../router.js';
import { can, useSession } from '../session.js';
import { dateTime, money, number, shopDay } from '../format.js';
import { Async, Card, Dialog, ErrorBox, Field, Table, Tabs, useApi } from '../ui.jsx';
import { LineChart } from '../charts.jsx';
import { LiveCount, SegmentBuilder, errorText, knownSkus, knownValues, usePreview } from './segments/builder.jsx';
import './segments.css';

const strings = {
  en: {
    title: 'Segments',
    newSegment: 'New segment',
    name: 'Name',
    description: 'Description',
    members: 'Members',
    version: 'Version',
    updated: 'Updated',
    timed: 'time-based',
    empty: 'No segment yet. Build the first one: “bought A, not B in 30 days”.',
    back: '← All segments',
    definition: 'Definition',
    counts: 'Daily counts',
    snapshots: 'Snapshots',
    versions: 'Versions',
    load: 'Load into the builder',
    loaded: 'An earlier version is loaded: save to make it the current one.',
    save: 'Save',
    create: 'Create segment',
    saving: 'Saving…',
    saved: 'Saved as version {v}.',
    delete: 'Delete',
    deleteTitle: 'Delete this segment?',
    deleteText: 'Its versions, snapshots and counts go with it. Journeys or segments that use it will refuse.',
    cancel: 'Cancel',
    export: 'Export CSV',
    exportPersonal: 'Export with contact details',
    takeSnapshot: 'Take a snapshot',
    noSnapshots: 'No snapshot yet.',
    size: 'Size',
    takenAt: 'Taken',
    takenBy: 'By',
    createdBy: 'By',
    created: 'Created',
    customer: 'Customer',
    phone: 'Phone',
    city: 'City',
    spent: 'Total spent',
    orders: 'Orders',
    lastOrder: 'Last order',
    next: 'Next page',
    prev: 'Previous page',
    total: '{n} members',
    noMembers: 'No customer matches now.',
    noCounts: 'No count recorded yet.',
    day: 'Day',
    membersChart: 'Members per day',
    builderTitle: 'Conditions',
    readOnly: 'Your role may look at segments but not change them.',
    sample: 'First matches',
    newTitle: 'New segment',
    nameRequired: 'Give the segment a name.',
    list: 'Segments',
  },
  'zh-CN': {
    title: '人群圈选',
    newSegment: '新建人群',
    name: '名称',
    description: '描述',
    members: '人数',
    version: '版本',
    updated: '更新时间',
    timed: '随时间变化',
    empty: '还没有人群。圈选第一个：“30 天内买了 A 但没买 B”。',
    back: '← 全部人群',
    definition: '圈选条件',
    counts: '每日人数',
    snapshots: '快照',
    versions: '版本',
    load: '载入编辑器',
    loaded: '已载入历史版本：保存后成为当前版本。',
    save: '保存',
    create: '创建人群',
    saving: '保存中…',
    saved: '已保存为第 {v} 版。',
    delete: '删除',
    deleteTitle: '删除该人群？',
    deleteText: '其版本、快照和人数记录将一并删除。引用它的旅程或人群会拒绝删除。',
    cancel: '取消',
    export: '导出 CSV',
    exportPersonal: '导出（含联系方式）',
    takeSnapshot: '生成快照',
    noSnapshots: '暂无快照。',
    size: '人数',
    takenAt: '生成时间',
    takenBy: '操作者',
    createdBy: '操作者',
    created: '创建时间',
    customer: '客户',
    phone: '手机',
    city: '城市',
    spent: '累计消费',
    orders: '订单数',
    lastOrder: '最近下单',
    next: '下一页',
    prev: '上一页',
    total: '共 {n} 人',
    noMembers: '当前没有匹配的客户。',
    noCounts: '暂无人数记录。',
    day: '日期',
    membersChart: '每日人数',
    builderTitle: '条件',
    readOnly: '您的角色可以查看人群，但不能修改。',
    sample: '部分匹配客户',
    newTitle: '新建人群',
    nameRequired: '请填写人群名称。',
    list: '人群',
  },
};

const PERSONAL_EXPORT = 'id,name,phone,email,gender,province,city,tier,points,total_spent,order_count,last_order_at';
/** A version's definition to open the builder with ("load into the builder"). */
let pendingDefinition = null;

const NEW_DEFINITION = { and: [{ purchase: {}, window: { last_days: 30 } }] };

function phoneOf(c) {
  const id = (c.identities || []).find((i) => i.kind === 'phone');
  return id ? id.value : '—';
}

function SegmentList() {
  const t = useT(strings);
  const state = useApi('/v1/segments');
  return (
    <>
      <div class="page-head">
        <h1>{t('title')}</h1>
        {can('segments:manage') && (
          <a class="button primary" href={href('/segments/new')} data-testid="new-segment">
            {t('newSegment')}
          </a>
        )}
      </div>
      <Card>
        <Async state={{ ...state, data: state.data && state.data.items }} empty={t('empty')}>
          {(items) => (
            <Table
              caption={t('list')}
              rowKey={(s) => s.id}
              columns={[
                { key: 'name', label: t('name'), render: (s) => <a href={href(`/segments/${s.id}`)}>{s.name}</a> },
                { key: 'members', label: t('members'), class: 'num', render: (s) => <span data-testid={`members-${s.id}`}>{number(s.members, 0)}</span> },
                { key: 'version', label: t('version'), class: 'num', render: (s) => `v${s.version}` },
                { key: 'timed', label: <span class="sr-only">{t('timed')}</span>, render: (s) => (s.depends_on_time ? <span class="badge">{t('timed')}</span> : null) },
                { key: 'updated', label: t('updated'), render: (s) => dateTime(s.updated_at) },
              ]}
              rows={items}
            />
          )}
        </Async>
      </Card>
    </>
  );
}

/** The name, the description and the definition, with the live count beside them. */
function Editor({ segment, onSaved, all }) {
  const t = useT(strings);
  const manage = can('segments:manage');
  const [name, setName] = useState(segment ? segment.name : '');
  const [description, setDescription] = useState(segment ? segment.description || '' : '');
  const [loaded] = useState(() => {
    const d = pendingDefinition;
    pendingDefinition = null;
    return d;
  });
  const [definition, setDefinition] = useState(loaded || (segment ? segment.definition : NEW_DEFINITION));
  const [saveError, setSaveError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState(null);
  const preview = usePreview(definition);
  const others = (all || []).filter((s) => !segment || s.id !== segment.id);
  const skus = useMemo(() => knownSkus([definition, ...(all || []).map((s) => s.definition)]), [all, definition]);
  const tags = useMemo(() => knownValues((all || []).map((s) => s.definition), 'tag'), [all]);
  const change = (d) => {
    setDefinition(d);
    setSaveError(null);
    setNotice(null);
  };
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setSaveError(null);
    setNotice(null);
    try {
      const body = { name, description: description.trim() || null, definition };
      const saved = segment ? await put(`/v1/segments/${segment.id}`, body) : await post('/v1/segments', body);
      setNotice(t('saved', { v: saved.version }));
      onSaved(saved);
    } catch (err) {
      setSaveError(err);
    } finally {
      setBusy(false);
    }
  };
  const defError = saveError && saveError.field && saveError.field.startsWith('definition') ? saveError : preview.error && preview.error.field ? preview.error : null;
  const nameError = saveError && saveError.field === 'name' ? errorText(saveError) : null;
  const descError = saveError && saveError.field === 'description' ? errorText(saveError) : null;
  const otherError = saveError && !(saveError.field && (saveError.field.startsWith('definition') || saveError.field === 'name' || saveError.field === 'description')) ? saveError : null;
  const previewOther = preview.error && !preview.error.field ? preview.error : null;
  return (
    <form class="seg-editor" onSubmit={save} data-testid="segment-editor">
      <div class="seg-editor-grid">
        <div>
          <div class="seg-names">
            <Field label={t('name')} error={nameError}>
              {(p) => <input {...p} name="name" value={name} disabled={!manage} onInput={(e) => setName(e.currentTarget.value)} />}
            </Field>
            <Field label={t('description')} error={descError}>
              {(p) => <input {...p} name="description" value={description} disabled={!manage} onInput={(e) => setDescription(e.currentTarget.value)} />}
            </Field>
          </div>
          <h2 class="seg-h">{t('builderTitle')}</h2>
          {!manage && <p class="muted">{t('readOnly')}</p>}
          {loaded && <p class="hint" role="status">{t('loaded')}</p>}
          <SegmentBuilder value={definition} onChange={change} error={defError} segments={others} skus={skus} tags={tags} />
        </div>
        <aside class="seg-aside">
          <LiveCount preview={preview} />
          {previewOther && (
            // The API's own words: a 403 here says which condition reads personal data.
            <div class="state error" role="alert" data-testid="preview-error">
              {errorText(previewOther)}
            </div>
          )}
          {preview.sample && preview.sample.length > 0 && !preview.loading && (
            <div class="seg-sample">
              <h3>{t('sample')}</h3>
              <ul>
                {preview.sample.map((c) => (
                  <li>
                    <a href={href(`/customers/${c.id}`)}>#{c.id}</a> {(c.profile && c.profile.name) || ''} <span class="muted">{c.profile && c.profile.city}</span>
                  </li>
                ))}
              </ul>
            </div>
          )}
          {manage && (
            <button type="submit" class="primary" disabled={busy} data-testid="save-segment">
              {busy ? t('saving') : segment ? t('save') : t('create')}
            </button>
          )}
          {notice && (
            <p class="good-text" role="status">
              {notice}
            </p>
          )}
          {otherError && <ErrorBox error={otherError} />}
        </aside>
      </div>
    </form>
  );
}

function Members({ id }) {
  const t = useT(strings);
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const state = useApi(`/v1/segments/${id}/members`, { limit: 20, cursor, count: true });
  return (
    <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noMembers')}>
      {(page) => (
        <>
          {page.count !== null && page.count !== undefined && (
            <p class="muted" data-testid="member-total">
              {t('total', { n: number(page.count, 0) })}
            </p>
          )}
          <Table
            caption={t('members')}
            rowKey={(c) => c.id}
            columns={[
              { key: 'id', label: t('customer'), render: (c) => <a href={href(`/customers/${c.id}`)}>#{c.id} {(c.profile && c.profile.name) || ''}</a> },
              { key: 'phone', label: t('phone'), render: (c) => <span class="mono">{phoneOf(c)}</span> },
              { key: 'city', label: t('city'), render: (c) => (c.profile && c.profile.city) || '—' },
              { key: 'spent', label: t('spent'), class: 'num', render: (c) => money(c.stats && c.stats.total_spent) },
              { key: 'orders', label: t('orders'), class: 'num', render: (c) => number(c.stats && c.stats.order_count, 0) },
              { key: 'last', label: t('lastOrder'), render: (c) => dateTime(c.stats && c.stats.last_order_at) },
            ]}
            rows={page.items}
          />
          <div class="actions pager">
            <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
              {t('prev')}
            </button>
            <button type="button" disabled={!page.next_cursor} onClick={() => setCursors([...cursors, page.next_cursor])}>
              {t('next')}
            </button>
          </div>
        </>
      )}
    </Async>
  );
}

/** Every day from `from` to `to` (YYYY-MM-DD), inclusive. */
function daysBetween(from, to) {
  const out = [];
  for (let d = Date.parse(`${from}T00:00:00Z`), end = Date.parse(`${to}T00:00:00Z`); d <= end; d += 86400000) out.push(new Date(d).toISOString().slice(0, 10));
  return out;
}

function Counts({ id }) {
  const t = useT(strings);
  const [range] = useState(() => ({ from: shopDay(-29), to: shopDay(0) }));
  const state = useApi(`/v1/segments/${id}/counts`, range);
  return (
    <Async state={{ ...state, data: state.data && state.data.items }} empty={t('noCounts')}>
      {(items) => {
        // The whole range on the axis; days before the segment existed stay empty.
        const byDay = new Map(items.map((d) => [d.day, d.members]));
        const days = daysBetween(range.from, range.to);
        return (
          <LineChart
            label={t('membersChart')}
            days={days}
            series={[{ label: t('members'), values: days.map((d) => (byDay.has(d) ? byDay.get(d) : null)) }]}
            format={(v) => number(v, 0)}
          />
        );
      }}
    </Async>
  );
}

function Snapshots({ id }) {
  const t = useT(strings);
  const state = useApi(`/v1/segments/${id}/snapshots`);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const take = async () => {
    setBusy(true);
    setError(null);
    try {
      await post(`/v1/segments/${id}/snapshots`);
      state.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {can('segments:manage') && (
        <div class="toolbar">
          <button type="button" onClick={take} disabled={busy} data-testid="take-snapshot">
            {t('takeSnapshot')}
          </button>
        </div>
      )}
      <ErrorBox error={error} />
      <Async state={{ ...state, data: state.data && state.data.items }} empty={t('noSnapshots')}>
        {(items) => (
          <Table
            caption={t('snapshots')}
            rowKey={(s) => s.id}
            columns={[
              { key: 'id', label: '#', render: (s) => s.id },
              { key: 'version', label: t('version'), render: (s) => `v${s.version}` },
              { key: 'size', label: t('size'), class: 'num', render: (s) => number(s.size, 0) },
              { key: 'taken', label: t('takenAt'), render: (s) => dateTime(s.taken_at) },
              { key: 'by', label: t('takenBy'), render: (s) => <span class="mono">{s.taken_by}</span> },
            ]}
            rows={items}
          />
        )}
      </Async>
    </>
  );
}

function Versions({ id }) {
  const t = useT(strings);
  const load = (definition) => {
    pendingDefinition = definition;
    navigate(`/segments/${id}`, { tab: 'definition' });
  };
  const state = useApi(`/v1/segments/${id}/versions`);
  return (
    <Async state={{ ...state, data: state.data && [...state.data.items].reverse() }}>
      {(items) => (
        <Table
          caption={t('versions')}
          rowKey={(v) => v.version}
          columns={[
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
            {
              key: 'load',
              label: <span class="sr-only">{t('load')}</span>,
              render: (v) =>
                can('segments:manage') && (
                  <button type="button" class="link" onClick={() => load(v.definition)}>
                    {t('load')}
                  </button>
                ),
            },
          ]}
          rows={items}
        />
      )}
    </Async>
  );
}

function ExportLink({ id }) {
  const t = useT(strings);
  // Shown only to a role with `segments:export`, and only when the shop's policy answers (an
  // analyst's key is refused it): the default columns hold no personal data.
  const allowed = can('segments:export');
  const policy = useApi(allowed ? '/v1/shop/settings/export' : null);
  if (!allowed || !policy.data) return null;
  // Personal columns only where the shop's policy allows them and the role may read them.
  const personal = policy.data.personal_columns && can('pii:read');
  return (
    <>
      <a class="button" href={`/v1/segments/${id}/export`} download={`segment-${id}.csv`} data-testid="export-segment">
        {t('export')}
      </a>
      {personal && (
        <a class="button" href={`/v1/segments/${id}/export?columns=${encodeURIComponent(PERSONAL_EXPORT)}`} download={`segment-${id}-personal.csv`} data-testid="export-personal">
          {t('exportPersonal')}
        </a>
      )}
    </>
  );
}

function Detail({ id, tab }) {
  const t = useT(strings);
  const state = useApi(`/v1/segments/${id}`);
  const all = useApi('/v1/segments');
  const [confirm, setConfirm] = useState(false);
  const [delError, setDelError] = useState(null);
  const remove = async () => {
    setDelError(null);
    try {
      await del(`/v1/segments/${id}`);
      setConfirm(false);
      navigate('/segments');
    } catch (err) {
      setDelError(err);
    }
  };
  const tabs = [
    { id: 'definition', label: t('definition') },
    { id: 'members', label: t('members') },
    { id: 'counts', label: t('counts') },
    { id: 'snapshots', label: t('snapshots') },
    { id: 'versions', label: t('versions') },
  ];
  const active = tabs.some((x) => x.id === tab) ? tab : 'definition';
  return (
    <>
      <a href={href('/segments')}>{t('back')}</a>
      <Async state={state}>
        {(segment) => (
          <>
            <div class="page-head">
              <h1>
                {segment.name} <span class="muted seg-ver">v{segment.version}</span>
              </h1>
              <span class="badge" data-testid="segment-members">
                {t('total', { n: number(segment.members, 0) })}
              </span>
              <ExportLink id={id} />
              {can('segments:manage') && (
                <button type="button" class="danger" onClick={() => setConfirm(true)}>
                  {t('delete')}
                </button>
              )}
            </div>
            {segment.description && <p class="muted">{segment.description}</p>}
            <Tabs label={t('title')} tabs={tabs} active={active} onChange={(x) => navigate(`/segments/${id}`, { tab: x })} />
            <Card>
              {active === 'definition' && (
                <Editor
                  key={segment.id}
                  segment={segment}
                  all={all.data && all.data.items}
                  onSaved={() => {
                    state.reload();
                    all.reload();
                  }}
                />
              )}
              {active === 'members' && <Members id={id} />}
              {active === 'counts' && <Counts id={id} />}
              {active === 'snapshots' && <Snapshots id={id} />}
              {active === 'versions' && <Versions id={id} />}
            </Card>
            <Dialog open={confirm} title={t('deleteTitle')} onClose={() => setConfirm(false)}>
              <p>{t('deleteText')}</p>
              <ErrorBox error={delError} />
              <div class="actions">
                <button type="button" class="danger" onClick={remove} data-testid="confirm-delete">
                  {t('delete')}
                </button>
                <button type="button" onClick={() => setConfirm(false)}>
                  {t('cancel')}
                </button>
              </div>
            </Dialog>
          </>
        )}
      </Async>
    </>
  );
}

function NewSegment() {
  const t = useT(strings);
  const all = useApi('/v1/segments');
  return (
    <>
      <a href={href('/segments')}>{t('back')}</a>
      <div class="page-head">
        <h1>{t('newTitle')}</h1>
      </div>
      <Card>
        <Editor segment={null} all={all.data && all.data.items} onSaved={(s) => navigate(`/segments/${s.id}`, { tab: 'members' })} />
      </Card>
    </>
  );
}

export default function Screen({ route }) {
  useSession();
  const [first] = route.parts;
  useEffect(() => {
    window.scrollTo(0, 0);
  }, [first]);
  if (!first) return <SegmentList />;
  if (first === 'new') return <NewSegment />;
  const id = Number(first);
  if (!Number.isInteger(id) || id <= 0) return <SegmentList />;
  return <Detail key={id} id={id} tab={route.query.tab} />;
}


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
import { ListPage, Paged, VersionsTable, useDownload, useLeaveGuard } from './segments/common.jsx';
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
    showMembers: 'Members',
    showMembersOf: 'Members of snapshot #{id}',
    snapshotMembers: 'Members of snapshot #{id} (v{v}, {n} customers, taken {at})',
    hideMembers: 'Hide',
    noSnapshotMembers: 'This snapshot holds no customer.',
    exporting: 'Exporting…',
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
    showMembers: '成员',
    showMembersOf: '快照 #{id} 的成员',
    snapshotMembers: '快照 #{id} 的成员（v{v}，{n} 人，生成于 {at}）',
    hideMembers: '收起',
    noSnapshotMembers: '该快照没有客户。',
    exporting: '导出中…',
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
  return (
    <ListPage
      title={t('title')}
      create={can('segments:manage') && { path: '/segments/new', label: t('newSegment'), testid: 'new-segment' }}
      path="/v1/segments"
      empty={t('empty')}
      caption={t('list')}
      columns={[
        { key: 'name', label: t('name'), render: (s) => <a href={href(`/segments/${s.id}`)}>{s.name}</a> },
        { key: 'members', label: t('members'), class: 'num', render: (s) => <span data-testid={`members-${s.id}`}>{number(s.members, 0)}</span> },
        { key: 'version', label: t('version'), class: 'num', render: (s) => `v${s.version}` },
        { key: 'timed', label: <span class="sr-only">{t('timed')}</span>, render: (s) => (s.depends_on_time ? <span class="badge">{t('timed')}</span> : null) },
        { key: 'updated', label: t('updated'), render: (s) => dateTime(s.updated_at) },
      ]}
    />
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
  const [dirty, setDirty] = useState(!!loaded);
  const release = useLeaveGuard(dirty);
  const preview = usePreview(definition);
  const others = (all || []).filter((s) => !segment || s.id !== segment.id);
  const skus = useMemo(() => knownSkus([definition, ...(all || []).map((s) => s.definition)]), [all, definition]);
  const tags = useMemo(() => knownValues((all || []).map((s) => s.definition), 'tag'), [all]);
  const change = (d) => {
    setDefinition(d);
    setDirty(true);
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
      setDirty(false);
      if (!segment) release();
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
              {(p) => <input {...p} name="name" value={name} disabled={!manage} onInput={(e) => { setName(e.currentTarget.value); setDirty(true); }} />}
            </Field>
            <Field label={t('description')} error={descError}>
              {(p) => <input {...p} name="description" value={description} disabled={!manage} onInput={(e) => { setDescription(e.currentTarget.value); setDirty(true); }} />}
            </Field>
          </div>
          <h2 class="seg-h">{t('builderTitle')}</h2>
          {!manage && <p class="muted">{t('readOnly')}</p>}
          {loaded && <p class="hint" role="status">{t('loaded')}</p>}
          <SegmentBuilder value={definition} onChange={change} error={defError} segments={others} skus={skus} tags={tags} disabled={!manage} />
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

/** One page of customers: a segment's members now, or a snapshot's. */
function MemberTable({ items, caption }) {
  const t = useT(strings);
  return (
    <Table
      caption={caption}
      rowKey={(c) => c.id}
      columns={[
        { key: 'id', label: t('customer'), render: (c) => <a href={href(`/customers/${c.id}`)}>#{c.id} {(c.profile && c.profile.name) || ''}</a> },
        { key: 'phone', label: t('phone'), render: (c) => <span class="mono">{phoneOf(c)}</span> },
        { key: 'city', label: t('city'), render: (c) => (c.profile && c.profile.city) || '—' },
        { key: 'spent', label: t('spent'), class: 'num', render: (c) => money(c.stats && c.stats.total_spent) },
        { key: 'orders', label: t('orders'), class: 'num', render: (c) => number(c.stats && c.stats.order_count, 0) },
        { key: 'last', label: t('lastOrder'), render: (c) => dateTime(c.stats && c.stats.last_order_at) },
      ]}
      rows={items}
    />
  );
}

function Members({ id }) {
  const t = useT(strings);
  return (
    <Paged path={`/v1/segments/${id}/members`} query={{ limit: 20, count: true }} empty={t('noMembers')} label={t('members')}>
      {(page) => (
        <>
          {page.count !== null && page.count !== undefined && (
            <p class="muted" data-testid="member-total">
              {t('total', { n: number(page.count, 0) })}
            </p>
          )}
          <MemberTable items={page.items} caption={t('members')} />
        </>
      )}
    </Paged>
  );
}

/** The customers a snapshot froze, with their data as it is now. */
function SnapshotMembers({ id, snapshot }) {
  const t = useT(strings);
  const caption = t('snapshotMembers', { id: snapshot.id, v: snapshot.version, n: number(snapshot.size, 0), at: dateTime(snapshot.taken_at) });
  return (
    <section class="seg-snapshot-members" data-testid="snapshot-members" aria-label={t('showMembersOf', { id: snapshot.id })}>
      <Paged key={snapshot.id} path={`/v1/segments/${id}/snapshots/${snapshot.id}/members`} query={{ limit: 20 }} empty={t('noSnapshotMembers')} label={caption}>
        {(page) => <MemberTable items={page.items} caption={caption} />}
      </Paged>
    </section>
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
  const [shown, setShown] = useState(null);
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
              {
                key: 'members',
                label: <span class="sr-only">{t('showMembers')}</span>,
                render: (s) => (
                  <button
                    type="button"
                    class="link"
                    aria-expanded={shown && shown.id === s.id ? 'true' : 'false'}
                    aria-label={shown && shown.id === s.id ? `${t('hideMembers')}: ${t('showMembersOf', { id: s.id })}` : t('showMembersOf', { id: s.id })}
                    data-testid={`snapshot-members-${s.id}`}
                    onClick={() => setShown(shown && shown.id === s.id ? null : s)}
                  >
                    {shown && shown.id === s.id ? t('hideMembers') : t('showMembers')}
                  </button>
                ),
              },
            ]}
            rows={items}
          />
        )}
      </Async>
      {shown && <SnapshotMembers id={id} snapshot={shown} />}
    </>
  );
}

function Versions({ id }) {
  const t = useT(strings);
  const load = (v) => {
    pendingDefinition = v.definition;
    navigate(`/segments/${id}`, { tab: 'definition' });
  };
  return <VersionsTable path={`/v1/segments/${id}/versions`} loadLabel={t('load')} onLoad={can('segments:manage') ? load : null} />;
}

function ExportLink({ id }) {
  const t = useT(strings);
  // Shown only to a role with `segments:export`, and only when the shop's policy answers (an
  // analyst's key is refused it): the default columns hold no personal data.
  const allowed = can('segments:export');
  const policy = useApi(allowed ? '/v1/shop/settings/export' : null);
  // Fetched, not a plain link: a refusal (403, 400) is shown here instead of being saved as the CSV.
  const { busy, error, download } = useDownload();
  if (!allowed || !policy.data) return null;
  // Personal columns only where the shop's policy allows them and the role may read them.
  const personal = policy.data.personal_columns && can('pii:read');
  return (
    <>
      <button type="button" disabled={busy} onClick={() => download(`/v1/segments/${id}/export`, null, `segment-${id}.csv`)} data-testid="export-segment">
        {busy ? t('exporting') : t('export')}
      </button>
      {personal && (
        <button type="button" disabled={busy} onClick={() => download(`/v1/segments/${id}/export`, { columns: PERSONAL_EXPORT }, `segment-${id}-personal.csv`)} data-testid="export-personal">
          {t('exportPersonal')}
        </button>
      )}
      {error && (
        <div class="seg-export-error" data-testid="export-error">
          <ErrorBox error={error} />
        </div>
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


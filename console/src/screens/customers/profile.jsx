// A customer's 360° profile: identities, stats, tags with reasons (manual ones added and removed
// here), scores with explanations, points with the ledger, expiring batches and tier history,
// coupons, messages, journey runs, consents, the timeline of events, and merges with unmerge.
import { useEffect, useState } from 'preact/hooks';
import { del, get, post } from '../../api.js';
import { date, dateTime, money, number } from '../../format.js';
import { useT } from '../../i18n.js';
import { navigate } from '../../router.js';
import { can } from '../../session.js';
import { Async, Card, Dialog, Empty, ErrorBox, Field, Loading, Stat, Table, Tabs, useApi } from '../../ui.jsx';
import { fieldMessage, labelText } from '../overview/util.js';
import { strings } from './strings.js';

const TABS = ['overview', 'tags', 'scores', 'points', 'coupons', 'messages', 'journeys', 'consents', 'timeline', 'merges'];
const TAB_LABEL = { overview: 'tabOverview', tags: 'tabTags', scores: 'tabScores', points: 'tabPoints', coupons: 'tabCoupons', messages: 'tabMessages', journeys: 'tabJourneys', consents: 'tabConsents', timeline: 'tabTimeline', merges: 'tabMerges' };

// Statuses in words, coloured by what they mean for the customer: good (it worked, it is
// available, they agreed), bad (it failed, they refused), warn (still under way), plain (over).
const TONE = {
  message: { queued: 'warn', sending: 'warn', sent: 'good', delivered: 'good', failed: 'bad', suppressed: 'bad' },
  run: { active: 'warn', completed: 'good', converted: 'good', exited: '', failed: 'bad' },
  coupon: { issued: 'good', redeemed: '', expired: 'bad' },
  consent: { opted_in: 'good', opted_out: 'bad' },
};
function StatusBadge({ kind, status, t }) {
  const tone = (TONE[kind] || {})[status];
  const key = `${kind}_${status}`;
  const text = t(key);
  return (
    <span class={`badge ${tone || ''}`} title={status}>
      {text === key ? status : text}
    </span>
  );
}

/** A word from the strings for `prefix_value`, else the value as it came. */
function word(t, prefix, value) {
  if (value === null || value === undefined || value === '') return '—';
  const key = `${prefix}_${value}`;
  const text = t(key);
  return text === key ? value : text;
}

/** `phone` → Phone, `external:erp` → External id (erp). */
function identityKind(kind, t) {
  if (kind && kind.startsWith('external:')) return t('idKindExternal', { source: kind.slice('external:'.length) });
  return word(t, 'idKind', kind);
}

/** `manual` → By hand, `journey:3` → a link to journey 3, a plugin's id → Plugin (id). */
function tagSource(source, t) {
  if (!source) return '—';
  if (source === 'manual') return t('srcManual');
  const j = /^journey:(\d+)$/.exec(source);
  if (j) return <a href={`#/journeys/${j[1]}`}>{t('srcJourney', { id: j[1] })}</a>;
  return t('srcPlugin', { id: source });
}

function Overview({ c, t }) {
  const p = c.profile || {};
  const s = c.stats || {};
  const attrs = Object.entries(p.attributes || {});
  return (
    <>
      <Card title={t('stats')} id="stats">
        <div class="stats">
          <Stat label={t('spent')} value={money(s.total_spent)} />
          <Stat label={t('orders')} value={number(s.order_count)} />
          <Stat label={t('aov')} value={money(s.average_order_value)} />
          <Stat label={t('firstOrder')} value={date(s.first_order_at)} />
          <Stat label={t('lastOrder')} value={date(s.last_order_at)} />
          <Stat label={t('refunds')} value={`${number(s.refund_count)} · ${money(s.refund_amount)}`} />
          <Stat label={t('tier')} value={c.tier || '—'} />
          <Stat label={t('points')} value={number(c.points)} />
        </div>
      </Card>
      <div class="grid">
        <Card title={t('identities')} id="identities">
          {c.identities.length ? (
            <Table
              columns={[
                { key: 'kind', label: t('kindCol'), render: (i) => <span title={i.kind}>{identityKind(i.kind, t)}</span> },
                { key: 'value', label: t('value'), render: (i) => <span class="mono">{i.value}</span> },
                { key: 'since', label: t('since'), render: (i) => dateTime(i.created_at) },
              ]}
              rows={c.identities}
            />
          ) : (
            <Empty />
          )}
        </Card>
        <Card title={t('details')} id="details">
          <dl class="facts">
            <dt>{t('name')}</dt>
            <dd>{p.name || '—'}</dd>
            <dt>{t('gender')}</dt>
            <dd>{p.gender ? t(p.gender) : '—'}</dd>
            <dt>{t('birthday')}</dt>
            <dd>{p.birthday ? date(p.birthday) : '—'}</dd>
            <dt>{t('region')}</dt>
            <dd>{[p.province, p.city].filter(Boolean).join(' ') || '—'}</dd>
            {attrs.map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
              </>
            ))}
            <dt>{t('created')}</dt>
            <dd>{dateTime(c.created_at)}</dd>
            <dt>{t('updated')}</dt>
            <dd>{dateTime(c.updated_at)}</dd>
          </dl>
        </Card>
      </div>
    </>
  );
}

function Tags({ c, reload, t }) {
  const [tag, setTag] = useState('');
  const [reason, setReason] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const writable = can('tags:write');
  const add = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post(`/v1/customers/${c.id}/tags`, { tag: tag.trim(), reason: reason.trim() || undefined });
      setTag('');
      setReason('');
      reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const remove = async (name) => {
    setError(null);
    try {
      await del(`/v1/customers/${c.id}/tags/${encodeURIComponent(name)}`);
      reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <Card title={t('tags')} id="tags">
        {c.tags.length ? (
          <Table
            rowKey={(r) => r.tag}
            columns={[
              { key: 'tag', label: t('tag'), render: (r) => <span class="badge">{r.tag}</span> },
              { key: 'source', label: t('source'), render: (r) => tagSource(r.source, t) },
              { key: 'reason', label: t('reason'), render: (r) => r.reason || '—' },
              { key: 'since', label: t('since'), render: (r) => dateTime(r.created_at) },
              {
                key: 'remove',
                label: <span class="sr-only">{t('remove')}</span>,
                render: (r) =>
                  writable && r.source === 'manual' ? (
                    <button type="button" class="danger" aria-label={t('removeTag', { tag: r.tag })} onClick={() => remove(r.tag)}>
                      {t('remove')}
                    </button>
                  ) : null,
              },
            ]}
            rows={c.tags}
          />
        ) : (
          <Empty>{t('noTags')}</Empty>
        )}
      </Card>
      {writable ? (
        <Card title={t('addTag')} id="add-tag">
          <form class="toolbar" onSubmit={add}>
            <Field label={t('tag')} error={error && error.field === 'tag' ? fieldMessage(error) : null}>
              {(p) => <input {...p} name="tag" value={tag} required maxLength={64} onInput={(e) => setTag(e.currentTarget.value)} />}
            </Field>
            <Field label={t('reason')} error={error && error.field === 'reason' ? fieldMessage(error) : null}>
              {(p) => <input {...p} name="reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />}
            </Field>
            <button type="submit" class="primary" disabled={busy}>
              {t('add')}
            </button>
          </form>
          {error && error.field !== 'tag' && error.field !== 'reason' && <ErrorBox error={error} />}
        </Card>
      ) : (
        <p class="hint">{t('tagsReadOnly')}</p>
      )}
    </>
  );
}

function Scores({ c, t }) {
  return (
    <Card title={t('tabScores')} id="scores">
      {c.scores.length ? (
        <Table
          rowKey={(r) => r.model}
          columns={[
            { key: 'model', label: t('model'), render: (r) => <span class="mono">{r.model}</span> },
            { key: 'label', label: t('label'), render: (r) => (r.label ? labelText(r.label) : '—') },
            { key: 'value', label: t('scoreValue'), class: 'num', render: (r) => number(r.value, 2) },
            { key: 'explanation', label: t('explanation'), render: (r) => r.explanation || '—' },
            { key: 'at', label: t('scoredAt'), render: (r) => dateTime(r.scored_at) },
          ]}
          rows={c.scores}
        />
      ) : (
        <Empty>{t('noScores')}</Empty>
      )}
    </Card>
  );
}

/** A list read page by page (`next_cursor`), each page appended. */
function usePaged(path, params) {
  const [pages, setPages] = useState({ items: [], next: null, loading: true, error: null });
  const key = `${path}?${JSON.stringify(params || {})}`;
  const load = (cursor, append) => {
    setPages((p) => ({ ...p, loading: true, error: null }));
    get(path, { ...(params || {}), cursor }).then(
      (d) => setPages((p) => ({ items: append ? [...p.items, ...d.items] : d.items, next: d.next_cursor || null, loading: false, error: null })),
      (error) => setPages((p) => ({ ...p, loading: false, error })),
    );
  };
  useEffect(() => {
    setPages({ items: [], next: null, loading: true, error: null });
    load(undefined, false);
  }, [key]);
  return { ...pages, more: () => load(pages.next, true), reload: () => load(undefined, false) };
}

function More({ paged, t }) {
  if (paged.loading && paged.items.length) return <Loading />;
  if (!paged.next) return null;
  return (
    <button type="button" onClick={paged.more}>
      {t('more')}
    </button>
  );
}

function PagedTable({ paged, columns, empty, t }) {
  if (paged.error) return <ErrorBox error={paged.error} onRetry={paged.reload} />;
  if (paged.loading && !paged.items.length) return <Loading />;
  if (!paged.items.length) return <Empty>{empty}</Empty>;
  return (
    <>
      <Table columns={columns} rows={paged.items} rowKey={(r) => r.id} />
      <More paged={paged} t={t} />
    </>
  );
}

function Points({ id, t }) {
  const account = useApi(`/v1/customers/${id}/points`);
  const ledger = usePaged(`/v1/customers/${id}/points/ledger`, { limit: 50 });
  return (
    <>
      <Card title={t('points')} id="points">
        <Async state={account} isEmpty={() => false}>
          {(a) => (
            <>
              <div class="stats">
                <Stat label={t('balance')} value={number(a.balance)} />
                <Stat label={t('available')} value={number(a.available)} />
                <Stat label={t('debt')} value={number(a.debt)} />
                <Stat label={t('tier')} value={a.tier || '—'} />
              </div>
              <h3>{t('expiring')}</h3>
              {a.expiring.length ? (
                <Table
                  columns={[
                    { key: 'points', label: t('points'), class: 'num', render: (r) => number(r.points) },
                    { key: 'expires_at', label: t('expiresAt'), render: (r) => dateTime(r.expires_at) },
                  ]}
                  rows={a.expiring}
                />
              ) : (
                <Empty>{t('noExpiring')}</Empty>
              )}
              <h3>{t('tierHistory')}</h3>
              {a.tier_history.length ? (
                <Table
                  columns={[
                    { key: 'change', label: t('fromTo'), render: (r) => `${r.from || '—'} → ${r.to || '—'}` },
                    { key: 'reason', label: t('reason') },
                    { key: 'source', label: t('source') },
                    { key: 'at', label: t('at'), render: (r) => dateTime(r.at) },
                  ]}
                  rows={a.tier_history}
                />
              ) : (
                <Empty>{t('noTierHistory')}</Empty>
              )}
            </>
          )}
        </Async>
      </Card>
      <Card title={t('ledger')} id="ledger">
        <PagedTable
          paged={ledger}
          t={t}
          empty={t('noLedger')}
          columns={[
            { key: 'kind', label: t('entry'), render: (r) => <span class="badge" title={r.kind}>{word(t, 'ledger', r.kind)}</span> },
            { key: 'points', label: t('points'), class: 'num', render: (r) => (r.points > 0 ? `+${number(r.points)}` : number(r.points)) },
            { key: 'remaining', label: t('remaining'), class: 'num', render: (r) => (r.remaining === null || r.remaining === undefined ? '—' : number(r.remaining)) },
            { key: 'reason', label: t('reason'), render: (r) => r.reason || r.source_key || '—' },
            { key: 'source', label: t('source') },
            { key: 'expires', label: t('expiresAt'), render: (r) => dateTime(r.expires_at) },
            { key: 'at', label: t('at'), render: (r) => dateTime(r.created_at) },
          ]}
        />
      </Card>
    </>
  );
}

function Coupons({ id, t }) {
  const state = useApi(`/v1/customers/${id}/coupons`);
  return (
    <Card title={t('tabCoupons')} id="coupons">
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noCoupons')}>
        {(d) => (
          <Table
            rowKey={(r) => r.id}
            columns={[
              { key: 'code', label: t('code'), render: (r) => <span class="mono">{r.code}</span> },
              { key: 'status', label: t('status'), render: (r) => <StatusBadge kind="coupon" status={r.status} t={t} /> },
              { key: 'face', label: t('faceValue'), class: 'num', render: (r) => money(r.face_value) },
              { key: 'threshold', label: t('threshold'), class: 'num', render: (r) => money(r.threshold) },
              { key: 'source', label: t('source') },
              { key: 'issued', label: t('issued'), render: (r) => dateTime(r.issued_at) },
              { key: 'expires', label: t('expires'), render: (r) => dateTime(r.expires_at) },
              { key: 'redeemed', label: t('redeemedBy'), render: (r) => (r.redeemed_at ? `${dateTime(r.redeemed_at)} (${r.order_id || '—'})` : '—') },
            ]}
            rows={d.items}
          />
        )}
      </Async>
    </Card>
  );
}

function Messages({ id, t }) {
  const paged = usePaged('/v1/messages', { customer_id: id, limit: 50 });
  return (
    <Card title={t('tabMessages')} id="messages">
      <PagedTable
        paged={paged}
        t={t}
        empty={t('noMessages')}
        columns={[
          { key: 'channel', label: t('channel') },
          { key: 'template', label: t('template'), render: (r) => <span class="mono">{r.template}</span> },
          { key: 'status', label: t('status'), render: (r) => <StatusBadge kind="message" status={r.status} t={t} /> },
          { key: 'reason', label: t('reason'), render: (r) => r.reason || '—' },
          { key: 'source', label: t('source') },
          { key: 'created', label: t('created'), render: (r) => dateTime(r.created_at) },
          { key: 'sent', label: t('sent'), render: (r) => dateTime(r.sent_at) },
          { key: 'delivered', label: t('delivered'), render: (r) => dateTime(r.delivered_at) },
        ]}
      />
    </Card>
  );
}

function Journeys({ id, t }) {
  const state = useApi(`/v1/customers/${id}/journeys`);
  return (
    <Card title={t('tabJourneys')} id="journeys">
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noRuns')}>
        {(d) => (
          <Table
            rowKey={(r) => r.id}
            columns={[
              { key: 'journey', label: t('journey'), render: (r) => <a href={`#/journeys/${r.journey_id}`}>{r.journey}</a> },
              { key: 'version', label: t('version'), class: 'num' },
              { key: 'status', label: t('status'), render: (r) => <StatusBadge kind="run" status={r.status} t={t} /> },
              { key: 'holdout', label: t('holdout'), render: (r) => (r.holdout ? t('yes') : t('no')) },
              { key: 'step', label: t('step'), render: (r) => r.step || '—' },
              { key: 'entered', label: t('entered'), render: (r) => dateTime(r.entered_at) },
              { key: 'converted', label: t('converted'), render: (r) => dateTime(r.converted_at) },
              { key: 'revenue', label: t('revenue'), class: 'num', render: (r) => (r.revenue === null || r.revenue === undefined ? '—' : money(r.revenue)) },
              { key: 'ended', label: t('ended'), render: (r) => (r.ended_at ? `${dateTime(r.ended_at)}${r.end_reason ? ` · ${r.end_reason}` : ''}` : '—') },
            ]}
            rows={d.items}
          />
        )}
      </Async>
    </Card>
  );
}

function Consents({ id, t }) {
  const state = useApi(`/v1/customers/${id}/consents`);
  return (
    <Card title={t('tabConsents')} id="consents">
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noConsents')}>
        {(d) => (
          <Table
            rowKey={(r) => r.channel}
            columns={[
              { key: 'channel', label: t('channel') },
              { key: 'status', label: t('status'), render: (r) => <StatusBadge kind="consent" status={r.status} t={t} /> },
              { key: 'source', label: t('source') },
              { key: 'updated', label: t('updated'), render: (r) => dateTime(r.updated_at) },
            ]}
            rows={d.items}
          />
        )}
      </Async>
    </Card>
  );
}

/** One event of the timeline in a line. */
function summary(e, t) {
  const p = e.payload || {};
  switch (e.type) {
    case 'order.paid':
      return `${p.order_id || p.id || ''} ${money(p.amount)}${Array.isArray(p.items) ? ` · ${t('items', { n: p.items.length })}` : ''}`.trim();
    case 'order.refunded':
      return `${p.order_id || ''} −${money(p.amount)}${p.reason ? ` · ${p.reason}` : ''}`.trim();
    case 'tag.added':
    case 'tag.removed':
      return `${p.tag}${p.reason ? ` · ${p.reason}` : ''}${p.source ? ` (${p.source})` : ''}`;
    case 'tier.changed':
      return `${p.from || '—'} → ${p.to || '—'}${p.reason ? ` · ${p.reason}` : ''}`;
    case 'behaviour.recorded':
      return [p.kind, p.product_name || p.sku, p.category].filter(Boolean).join(' · ');
    case 'customer.updated':
      return Array.isArray(p.fields) ? p.fields.join(', ') : '';
    case 'customer.created':
      return Array.isArray(p.identities) ? p.identities.map((i) => `${i.kind}:${i.value}`).join(', ') : '';
    default: {
      const s = JSON.stringify(p);
      return s.length > 160 ? `${s.slice(0, 160)}…` : s;
    }
  }
}

/** When it happened: an order's payment, a refund, a behaviour's own time, else when it was recorded. */
function when(e) {
  const p = e.payload || {};
  return p.occurred_at || p.paid_at || p.refunded_at || e.created_at;
}

function Timeline({ c, more, setMore, t }) {
  const events = c.timeline || [];
  return (
    <Card
      title={t('tabTimeline')}
      id="timeline"
      actions={
        !more && events.length >= 50 ? (
          <button type="button" onClick={() => setMore(true)}>
            {t('showMore')}
          </button>
        ) : null
      }
    >
      {events.length ? (
        <ol class="timeline">
          {events.map((e) => (
            <li key={e.seq}>
              <time dateTime={when(e)}>{dateTime(when(e))}</time>
              <span class="badge">{e.type}</span>
              <span>{summary(e, t)}</span>
            </li>
          ))}
        </ol>
      ) : (
        <Empty>{t('noEvents')}</Empty>
      )}
    </Card>
  );
}

function Merges({ id, reloadCustomer, t }) {
  const state = useApi(`/v1/customers/${id}/merges`);
  const [confirm, setConfirm] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const writable = can('customers:write');
  const unmerge = async () => {
    const m = confirm;
    setError(null);
    try {
      await post(`/v1/merges/${m.id}/unmerge`);
      setConfirm(null);
      setDone(m.id);
      state.reload();
      reloadCustomer();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title={t('tabMerges')} id="merges">
      {done && (
        <p role="status" class="badge good">
          {t('unmergeDone', { id: done })}
        </p>
      )}
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noMerges')}>
        {(d) => (
          <Table
            rowKey={(r) => r.id}
            columns={[
              { key: 'id', label: '#', render: (r) => r.id },
              { key: 'survivor', label: t('survivor'), render: (r) => <a href={`#/customers/${r.survivor_id}`}>#{r.survivor_id}</a> },
              { key: 'merged', label: t('merged'), render: (r) => <a href={`#/customers/${r.merged_id}`}>#{r.merged_id}</a> },
              { key: 'reason', label: t('reason') },
              { key: 'actor', label: t('actor'), render: (r) => <span class="mono">{r.actor}</span> },
              { key: 'moved', label: t('moved'), render: (r) => <span class="mono">{(r.identities || []).map((i) => `${i.kind}:${i.value}`).join(', ') || '—'}</span> },
              { key: 'at', label: t('at'), render: (r) => dateTime(r.created_at) },
              {
                key: 'unmerge',
                label: t('unmerged'),
                render: (r) =>
                  r.unmerged_at ? (
                    `${dateTime(r.unmerged_at)}${r.unmerged_by ? ` · ${r.unmerged_by}` : ''}`
                  ) : writable ? (
                    <button type="button" class="danger" onClick={() => { setError(null); setConfirm(r); }}>
                      {t('unmerge')}
                    </button>
                  ) : (
                    '—'
                  ),
              },
            ]}
            rows={d.items}
          />
        )}
      </Async>
      <Dialog open={!!confirm} title={confirm ? t('unmergeTitle', { id: confirm.id }) : ''} onClose={() => setConfirm(null)}>
        {confirm && (
          <>
            <p>{t('unmergeText', { merged: confirm.merged_id, survivor: confirm.survivor_id })}</p>
            {error && <ErrorBox error={error} />}
            <div class="actions">
              <button type="button" class="danger" onClick={unmerge}>
                {t('confirmUnmerge')}
              </button>
              <button type="button" onClick={() => setConfirm(null)}>
                {t('cancel')}
              </button>
            </div>
          </>
        )}
      </Dialog>
    </Card>
  );
}

export default function Profile({ id, query }) {
  const t = useT(strings);
  const [more, setMore] = useState(false);
  const valid = /^\d+$/.test(id);
  // fetch follows the API's 301 for a merged customer: the answer is the survivor's.
  const state = useApi(valid ? `/v1/customers/${id}` : null, { timeline: more ? 200 : 50 });
  const tab = TABS.includes(query.tab) ? query.tab : 'overview';
  const c = state.data;
  const shownId = c ? String(c.id) : id;
  const setTab = (next) => navigate(`/customers/${shownId}`, { tab: next === 'overview' ? undefined : next });
  if (!valid) return <ErrorBox error={new Error(t('notFound', { id }))} />;
  return (
    <div class="customer-profile">
      <p>
        <a href="#/customers">{t('back')}</a>
      </p>
      {state.error && state.error.status === 404 ? (
        <ErrorBox error={new Error(t('notFound', { id }))} />
      ) : (
        <Async state={state} isEmpty={() => false}>
          {(cust) => (
            <>
              <div class="page-head">
                <h1>
                  {cust.profile && cust.profile.name ? `${cust.profile.name} · ` : ''}
                  {t('profile', { id: cust.id })}
                </h1>
                {cust.tier && <span class="badge">{cust.tier}</span>}
                {cust.tags.slice(0, 3).map((tg) => (
                  <span class="badge warn">{tg.tag}</span>
                ))}
              </div>
              {String(cust.id) !== id && <p role="status" class="state">{t('mergedInto', { from: id, to: cust.id })}</p>}
              <Tabs label={t('sections')} active={tab} onChange={setTab} tabs={TABS.map((k) => ({ id: k, label: t(TAB_LABEL[k]) }))} />
              <div role="tabpanel" aria-label={t(TAB_LABEL[tab])} data-testid={`tab-${tab}`}>
                {tab === 'overview' && <Overview c={cust} t={t} />}
                {tab === 'tags' && <Tags c={cust} reload={state.reload} t={t} />}
                {tab === 'scores' && <Scores c={cust} t={t} />}
                {tab === 'points' && <Points id={cust.id} t={t} />}
                {tab === 'coupons' && <Coupons id={cust.id} t={t} />}
                {tab === 'messages' && <Messages id={cust.id} t={t} />}
                {tab === 'journeys' && <Journeys id={cust.id} t={t} />}
                {tab === 'consents' && <Consents id={cust.id} t={t} />}
                {tab === 'timeline' && <Timeline c={cust} more={more} setMore={setMore} t={t} />}
                {tab === 'merges' && <Merges id={cust.id} reloadCustomer={state.reload} t={t} />}
              </div>
            </>
          )}
        </Async>
      )}
    </div>
  );
}

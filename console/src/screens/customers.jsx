// Customers: find one by phone, e-mail, nick, UnionID, external id or Kith id; list them by tag,
// score group or segment, a page at a time; open the 360° profile at #/customers/<id>.
// Personal data comes masked from the API unless the role holds pii:read: shown as it comes.
import { useEffect, useState } from 'preact/hooks';
import { money, number, date } from '../format.js';
import { useT } from '../i18n.js';
import { navigate } from '../router.js';
import { can } from '../session.js';
import { Async, Card, Field, Table, useApi, useProblemText } from '../ui.jsx';
import { fieldMessage, labelText } from './overview/util.js';
import { strings } from './customers/strings.js';
import Profile from './customers/profile.jsx';
import './customers/customers.css';

const KINDS = ['phone', 'email', 'nick', 'unionid', 'external', 'id'];
const PERSONAL = ['phone', 'email', 'nick', 'unionid'];

/** The kinds the role may search by: without pii:read, only external ids and Kith ids. */
function allowedKinds() {
  return can('pii:read') ? KINDS : KINDS.filter((k) => !PERSONAL.includes(k));
}

/** The `identity` query parameter (`phone:138…`, `external:erp:C-1`) back into the form's kind and value. */
function splitIdentity(identity) {
  const first = allowedKinds()[0];
  if (!identity) return { kind: first, value: '' };
  if (identity.startsWith('external:')) return { kind: 'external', value: identity.slice('external:'.length) };
  const i = identity.indexOf(':');
  return i < 0 ? { kind: first, value: identity } : { kind: identity.slice(0, i), value: identity.slice(i + 1) };
}

function SearchForm({ query, apiError, t }) {
  const initial = splitIdentity(query.identity);
  const [kind, setKind] = useState(initial.kind);
  const [value, setValue] = useState(initial.value);
  const [error, setError] = useState(null);
  const pii = can('pii:read');
  const problem = useProblemText();
  useEffect(() => {
    const s = splitIdentity(query.identity);
    setKind(s.kind);
    setValue(s.value);
  }, [query.identity]);
  const submit = (e) => {
    e.preventDefault();
    const v = value.trim();
    if (!v) return setError(t('valueNeeded'));
    if (kind === 'id') {
      if (!/^\d+$/.test(v)) return setError(t('idNumber'));
      setError(null);
      return navigate(`/customers/${v}`);
    }
    if (kind === 'external' && !/^[^:]+:.+$/.test(v)) return setError(t('externalForm'));
    setError(null);
    navigate('/customers', { identity: `${kind}:${v}` });
  };
  return (
    <Card title={t('search')} id="search">
      <form class="toolbar" onSubmit={submit} role="search" aria-label={t('search')}>
        <Field label={t('kind')}>
          {(p) => (
            <select {...p} name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
              {KINDS.map((k) => (
                <option value={k} disabled={!pii && PERSONAL.includes(k)}>
                  {t(k)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label={t('value')} error={error || (query.identity && apiError && (apiError.field === 'identity' || apiError.status === 403) ? (apiError.status === 403 ? problem(apiError) : fieldMessage(apiError)) : null)}>
          {(p) => <input {...p} name="value" type="search" value={value} onInput={(e) => setValue(e.currentTarget.value)} placeholder={kind === 'phone' ? '13800000000' : kind === 'external' ? 'erp:C-001' : ''} />}
        </Field>
        <button type="submit" class="primary">
          {t('find')}
        </button>
        {query.identity && (
          <button type="button" onClick={() => navigate('/customers')}>
            {t('clear')}
          </button>
        )}
      </form>
      {!pii && <p class="hint">{t('piiHint')}</p>}
    </Card>
  );
}

function Filters({ query, t }) {
  const [tag, setTag] = useState(query.tag || '');
  const [score, setScore] = useState(query.score || '');
  const [segment, setSegment] = useState(query.segment || '');
  const rfm = useApi('/v1/metrics/scores/rfm');
  const aipl = useApi('/v1/metrics/scores/aipl');
  const segments = useApi('/v1/segments');
  useEffect(() => {
    setTag(query.tag || '');
    setScore(query.score || '');
    setSegment(query.segment || '');
  }, [query.tag, query.score, query.segment]);
  const options = [
    ...((rfm.data && rfm.data.labels) || []).map((l) => ({ value: `rfm:${l.code}`, label: `RFM · ${labelText(l.label)} (${number(l.customers)})` })),
    ...((aipl.data && aipl.data.labels) || []).map((l) => ({ value: `aipl:${l.code}`, label: `AIPL · ${labelText(l.label)} (${number(l.customers)})` })),
  ];
  if (score && !options.some((o) => o.value === score)) options.unshift({ value: score, label: score });
  const submit = (e) => {
    e.preventDefault();
    // A segment lists its members as they are: the tag and score group are not sent with it.
    navigate('/customers', segment ? { segment } : { tag: tag.trim(), score });
  };
  return (
    <Card title={t('filters')} id="filters">
    <form class="toolbar" onSubmit={submit} aria-label={t('filters')}>
      <Field label={t('tag')}>
        {(p) => <input {...p} name="tag" value={tag} disabled={!!segment} onInput={(e) => setTag(e.currentTarget.value)} placeholder="lifecycle:active" />}
      </Field>
      <Field label={t('score')}>
        {(p) => (
          <select {...p} name="score" value={score} disabled={!!segment} onChange={(e) => setScore(e.currentTarget.value)}>
            <option value="">{t('any')}</option>
            {options.map((o) => (
              <option value={o.value}>{o.label}</option>
            ))}
          </select>
        )}
      </Field>
      <Field label={t('segment')} hint={segment ? t('segmentAlone') : null}>
        {(p) => (
          <select {...p} name="segment" value={segment} onChange={(e) => setSegment(e.currentTarget.value)}>
            <option value="">{t('any')}</option>
            {((segments.data && segments.data.items) || []).map((s) => (
              <option value={String(s.id)}>
                {s.name} ({number(s.members)})
              </option>
            ))}
          </select>
        )}
      </Field>
      <button type="submit">{t('apply')}</button>
    </form>
    </Card>
  );
}

function identitiesText(c) {
  return (c.identities || []).map((i) => i.value).join(', ');
}

function Results({ query, state, t }) {
  // A refused lookup is shown on the search field.
  if (query.identity && state.error && (state.error.field === 'identity' || state.error.status === 403)) return null;
  return (
    <Card title={t('results')} id="results">
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('none')}>
        {(d) => (
          <>
            <Table
              rowKey={(c) => c.id}
              onRowClick={(c) => navigate(`/customers/${c.id}`)}
              columns={[
                { key: 'id', label: t('id'), render: (c) => <a href={`#/customers/${c.id}`}>#{c.id}</a> },
                { key: 'name', label: t('name'), render: (c) => (c.profile && c.profile.name) || '—' },
                { key: 'identities', label: t('identities'), render: (c) => <span class="mono">{identitiesText(c)}</span> },
                { key: 'tier', label: t('tier'), render: (c) => c.tier || '—' },
                { key: 'points', label: t('points'), class: 'num', render: (c) => number(c.points) },
                { key: 'orders', label: t('orders'), class: 'num', render: (c) => number(c.stats.order_count) },
                { key: 'spent', label: t('spent'), class: 'num', render: (c) => money(c.stats.total_spent) },
                { key: 'last', label: t('lastOrder'), render: (c) => date(c.stats.last_order_at) },
                {
                  key: 'tags',
                  label: t('tags'),
                  render: (c) =>
                    (c.tags || []).slice(0, 4).map((tg) => (
                      <span class="badge" title={tg.reason || ''}>
                        {tg.tag}
                      </span>
                    )),
                },
              ]}
              rows={d.items}
            />
            <div class="actions pager">
              {query.cursor && (
                <button type="button" onClick={() => navigate('/customers', { ...query, cursor: undefined })}>
                  {t('firstPage')}
                </button>
              )}
              {d.next_cursor && (
                <button type="button" onClick={() => navigate('/customers', { ...query, cursor: d.next_cursor })}>
                  {t('nextPage')}
                </button>
              )}
            </div>
          </>
        )}
      </Async>
    </Card>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  const query = route.query || {};
  const profile = route.parts.length > 0;
  // A segment lists its members; otherwise the customers with the filters.
  const path = profile ? null : query.segment ? `/v1/segments/${encodeURIComponent(query.segment)}/members` : '/v1/customers';
  const params = query.segment ? { cursor: query.cursor, limit: 50 } : { identity: query.identity, tag: query.tag, score: query.score, cursor: query.cursor, limit: 50 };
  const state = useApi(path, params);
  if (profile) return <Profile id={route.parts[0]} query={query} />;
  return (
    <div class="customers">
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <SearchForm query={query} apiError={state.error} t={t} />
      <Filters query={query} t={t} />
      <Results query={query} state={state} t={t} />
    </div>
  );
}

// Journeys (自动化营销画布): the list with statuses; a journey as a graph on a canvas, nodes
// edited in side panels, errors on the faulty node, saved as new versions; dry run; activate,
// pause, archive; live per-node counts; statistics with ROI, holdout lift and A/B p-values.
import { useEffect, useState } from 'preact/hooks';
import { del, get, post, put } from '../api.js';
import { useT } from '../i18n.js';
import { href, navigate } from '../router.js';
import { can, useSession } from '../session.js';
import { dateTime, money, number, percent } from '../format.js';
import { Async, Card, Dialog, ErrorBox, Field, Stat, Table, Tabs, useApi } from '../ui.jsx';
import { errorText } from './segments/builder.jsx';
import { strings } from './journeys/strings.js';
import { KINDS, TRIGGER, addStep, faultyNode, kindOf, removeStep } from './journeys/graph.js';
import { Canvas, stepCounts } from './journeys/canvas.jsx';
import { StepPanel, TriggerPanel } from './journeys/panels.jsx';
import { ListPage, Paged, VersionsTable, useLeaveGuard } from './segments/common.jsx';
import { channelName, outcomeList, skipReason } from './journeys/names.js';
import './segments.css';
import './segments/builder.css';
import './journeys.css';

const NEW_DEFINITION = {
  trigger: { event: 'order.paid' },
  holdout_percent: 10,
  goal: { event: 'order.paid', within_days: 30 },
  start: 'welcome',
  steps: { welcome: { send: { channel: 'sms', template: 'SMS_WELCOME' } } },
};

/** A journey to start the next new one from ("copy into a new journey"). */
let pendingCopy = null;
/** A version to put back on the canvas ("load onto the canvas"). */
let pendingVersion = null;

function StatusBadge({ status }) {
  const t = useT(strings);
  const cls = status === 'active' ? 'good' : status === 'paused' ? 'warn' : status === 'archived' ? 'bad' : '';
  return (
    <span class={`badge ${cls}`} data-testid="journey-status" data-status={status}>
      {t(`st_${status}`)}
    </span>
  );
}

function JourneyList() {
  const t = useT(strings);
  return (
    <ListPage
      title={t('title')}
      create={can('journeys:manage') && { path: '/journeys/new', label: t('newJourney'), testid: 'new-journey' }}
      path="/v1/journeys"
      empty={t('empty')}
      caption={t('list')}
      columns={[
        { key: 'name', label: t('name'), render: (j) => <a href={href(`/journeys/${j.id}`)}>{j.name}</a> },
        { key: 'status', label: t('status'), render: (j) => <StatusBadge status={j.status} /> },
        { key: 'version', label: t('version'), class: 'num', render: (j) => `v${j.version}` },
        { key: 'in', label: t('inProgress'), class: 'num', render: (j) => number(j.in_progress, 0) },
        { key: 'activated', label: t('activated'), render: (j) => dateTime(j.activated_at) },
        { key: 'updated', label: t('updated'), render: (j) => dateTime(j.updated_at) },
      ]}
    />
  );
}

function DryRun({ result }) {
  const t = useT(strings);
  if (!result) return null;
  return (
    <Card title={t('dryRunTitle')} class="jn-dry" id="dry-run">
      <div class="stats" data-testid="dry-run">
        <Stat label={t('dryRunCount')} value={<span data-testid="dry-run-count">{number(result.count, 0)}</span>} />
        <Stat label={t('dryRunHoldout')} value={number(result.holdout, 0)} />
      </div>
      <p>
        <span class="muted">{t('dryRunBasis')}:</span> {result.basis}
      </p>
      {result.sample && result.sample.length > 0 && (
        <p>
          <span class="muted">{t('dryRunSample')}:</span>{' '}
          {result.sample.map((id) => (
            <>
              <a href={href(`/customers/${id}`)}>#{id}</a>{' '}
            </>
          ))}
        </p>
      )}
      <p class="hint">{t('dryRunSaved')}</p>
    </Card>
  );
}

/** Queue the journey's messages for one customer now (a proof), and show what was queued. */
function TestSend({ id }) {
  const t = useT(strings);
  const [customer, setCustomer] = useState('');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const send = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await post(`/v1/journeys/${id}/test-send`, { customer_id: Number(customer) }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title={t('testSend')} id="jn-test-send">
      <form class="toolbar" onSubmit={send}>
        <Field label={t('testCustomer')} error={error && error.field === 'customer_id' ? errorText(error) : null}>
          {(p) => <input {...p} inputMode="numeric" value={customer} onInput={(e) => setCustomer(e.currentTarget.value)} required />}
        </Field>
        <button type="submit" disabled={busy}>
          {t('testSendButton')}
        </button>
      </form>
      <p class="hint">{t('testSendHint')}</p>
      {error && error.field !== 'customer_id' && (
        <div class="state error" role="alert">
          {errorText(error)}
        </div>
      )}
      {result && (
        <Table
          caption={t('testSent', { n: result.messages.length })}
          rowKey={(m) => m.id}
          columns={[
            { key: 'id', label: 'ID', render: (m) => <span class="mono">{m.id}</span> },
            { key: 'channel', label: t('channel'), render: (m) => channelName(t, m.channel) },
            { key: 'template', label: t('template'), render: (m) => m.template },
            { key: 'status', label: t('status'), render: (m) => <span class="badge" data-status={m.status}>{t(`ms_${m.status}`)}</span> },
          ]}
          rows={result.messages}
        />
      )}
    </Card>
  );
}

function StatsView({ stats }) {
  const t = useT(strings);
  if (!stats) return null;
  const lift = stats.lift;
  return (
    <div data-testid="journey-stats">
      <div class="stats">
        <Stat label={t('entered')} value={number(stats.entered, 0)} testid="stat-entered" />
        <Stat label={t('inProgress')} value={number(stats.in_progress, 0)} />
        <Stat label={t('converted')} value={number(stats.converted, 0)} testid="stat-converted" />
        <Stat label={t('revenue')} value={money(stats.attributed_revenue)} testid="stat-revenue" />
        <Stat label={t('cost')} value={money(stats.cost)} testid="stat-cost" />
        <Stat label={t('roi')} value={stats.roi === null || stats.roi === undefined ? '—' : `${number(stats.roi, 2)}×`} testid="stat-roi" />
      </div>
      <div class="grid jn-stats-grid">
        <Card title={t('lift')} id="jn-lift">
          <Table
            columns={[
              { key: 'arm', label: t('arm') },
              { key: 'entered', label: t('entered'), class: 'num' },
              { key: 'converted', label: t('converted'), class: 'num' },
              { key: 'rate', label: t('rate'), class: 'num' },
              { key: 'revenue', label: t('revenue'), class: 'num' },
            ]}
            rows={[
              ['treated', stats.treated],
              ['holdoutArm', stats.holdout],
            ].map(([k, a]) => ({ arm: t(k), entered: number(a.entered, 0), converted: number(a.converted, 0), rate: percent(a.rate), revenue: money(a.revenue) }))}
          />
          <p data-testid="lift">
            {t('liftAbs')}: {lift ? t('pp', { n: number(lift.absolute * 100, 1) }) : '—'} · {t('liftRel')}: {lift ? percent(lift.relative) : '—'} · {t('pValue')}:{' '}
            {lift && lift.p_value !== null && lift.p_value !== undefined ? number(lift.p_value, 4) : '—'}
          </p>
        </Card>
        <Card title={t('abTitle')} id="jn-ab">
          {stats.variants.length === 0 ? (
            <p class="muted">{t('noVariants')}</p>
          ) : (
            <Table
                rowKey={(v) => v.variant}
              columns={[
                { key: 'variant', label: t('variant'), render: (v) => <span class="mono">{v.variant}</span> },
                { key: 'entered', label: t('entered'), class: 'num', render: (v) => number(v.entered, 0) },
                { key: 'converted', label: t('converted'), class: 'num', render: (v) => number(v.converted, 0) },
                { key: 'rate', label: t('rate'), class: 'num', render: (v) => percent(v.rate) },
                { key: 'revenue', label: t('revenue'), class: 'num', render: (v) => money(v.revenue) },
                { key: 'p', label: t('pValue'), class: 'num', render: (v) => (v.p_value === null || v.p_value === undefined ? '—' : number(v.p_value, 4)) },
              ]}
              rows={stats.variants}
            />
          )}
        </Card>
        <Card title={t('messages')} id="jn-messages">
          <Table
            columns={['queued', 'sent', 'delivered', 'failed', 'suppressed'].map((k) => ({ key: k, label: t(k), class: 'num', render: (m) => number(m[k], 0) })).concat([{ key: 'cost', label: t('cost'), class: 'num', render: (m) => money(m.cost) }])}
            rows={[stats.messages]}
          />
        </Card>
        <Card title={t('coupons')} id="jn-coupons">
          <Table
            columns={[
              { key: 'issued', label: t('issued'), class: 'num', render: (c) => `${number(c.issued, 0)} (${money(c.issued_value)})` },
              { key: 'redeemed', label: t('redeemed'), class: 'num', render: (c) => `${number(c.redeemed, 0)} (${money(c.redeemed_value)})` },
            ]}
            rows={[stats.coupons]}
          />
        </Card>
      </div>
      <Card title={t('stepsTitle')} id="jn-steps">
        {stats.steps.length === 0 ? (
          <p class="muted">{t('noStats')}</p>
        ) : (
          <Table
            columns={[
              { key: 'version', label: t('version'), render: (s) => `v${s.version}` },
              { key: 'step', label: t('step'), render: (s) => <span class="mono">{s.step}</span> },
              { key: 'kind', label: t('addKind'), render: (s) => t(`k_${s.kind}`) },
              { key: 'outcomes', label: t('outcomes'), render: (s) => outcomeList(t, s.outcomes) || '—' },
              { key: 'skipped', label: t('skipped'), render: (s) => Object.entries(s.skipped).map(([k, v]) => `${skipReason(t, k)} ${number(v, 0)}`).join(' · ') || '—' },
            ]}
            rows={stats.steps}
          />
        )}
      </Card>
    </div>
  );
}

function Runs({ id }) {
  const t = useT(strings);
  return (
    <Paged path={`/v1/journeys/${id}/runs`} query={{ limit: 50 }} empty={t('noRuns')} label={t('runs')}>
      {(page) => (
        <Table
          caption={t('runs')}
          rowKey={(r) => r.id}
          columns={[
            { key: 'customer', label: t('customer'), render: (r) => <a href={href(`/customers/${r.customer_id}`)}>#{r.customer_id}</a> },
            { key: 'status', label: t('status'), render: (r) => <span class="badge">{t(`rs_${r.status}`)}</span> },
            { key: 'version', label: t('version'), render: (r) => `v${r.version}` },
            { key: 'step', label: t('step'), render: (r) => <span class="mono">{r.step || '—'}</span> },
            { key: 'variant', label: t('variant'), render: (r) => r.variant || (r.holdout ? t('holdoutArm') : '—') },
            { key: 'entered', label: t('enteredAt'), render: (r) => dateTime(r.entered_at) },
            { key: 'revenue', label: t('revenue'), class: 'num', render: (r) => (r.revenue === null || r.revenue === undefined ? '—' : money(r.revenue)) },
          ]}
          rows={page.items}
        />
      )}
    </Paged>
  );
}

function Versions({ id }) {
  const t = useT(strings);
  const load = (v) => {
    pendingVersion = v;
    navigate(`/journeys/${id}`, { tab: 'canvas' });
  };
  return <VersionsTable path={`/v1/journeys/${id}/versions`} loadLabel={t('load')} onLoad={can('journeys:manage') ? load : null} />;
}

/** The editor of one journey (or a new one): the canvas, its panels, the lifecycle. */
function Editor({ journey, onChanged, tab }) {
  const t = useT(strings);
  const manage = can('journeys:manage');
  const isNew = !journey;
  const [copy] = useState(() => {
    const c = isNew ? pendingCopy : null;
    pendingCopy = null;
    return c;
  });
  const [name, setName] = useState(journey ? journey.name : copy ? copy.name : '');
  const [description, setDescription] = useState(journey ? journey.description || '' : copy ? copy.description || '' : '');
  const [definition, setDefinition] = useState(journey ? journey.definition : copy ? copy.definition : NEW_DEFINITION);
  // A new journey counts as changed once something is typed (or when it is a copy).
  const [dirty, setDirty] = useState(isNew && !!copy);
  const release = useLeaveGuard(dirty, { samePath: true });
  const [selected, setSelected] = useState(TRIGGER);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState(null);
  const [dry, setDry] = useState(null);
  const [addKind, setAddKind] = useState('send');
  const [confirm, setConfirm] = useState(null);
  const segments = useApi('/v1/segments');
  const templates = useApi(manage ? '/v1/coupon-templates' : null);
  const stats = useApi(isNew ? null : `/v1/journeys/${journey.id}/stats`);
  const status = journey ? journey.status : 'draft';
  const readOnly = !manage || status === 'archived';

  // Live per-node counts: the statistics again every 15 s while the journey runs.
  useEffect(() => {
    if (isNew || status !== 'active') return undefined;
    const timer = setInterval(() => stats.reload(), 15000);
    return () => clearInterval(timer);
  }, [isNew, status]);

  const change = (d) => {
    setDefinition(d);
    setDirty(true);
    setNotice(null);
  };
  const fault = faultyNode(error, definition);
  const faultText = error ? errorText(error) : '';
  const nameError = error && error.field === 'name' ? faultText : null;
  const descError = error && error.field === 'description' ? faultText : null;
  const generalError = error && !fault && !nameError && !descError ? error : null;

  const act = async (fn) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
      const f = faultyNode(err, definition);
      if (f) setSelected(f.node);
    } finally {
      setBusy(false);
    }
  };
  const save = () =>
    act(async () => {
      const body = { name, description: description.trim() || null, definition };
      if (isNew) {
        const created = await post('/v1/journeys', body);
        release();
        navigate(`/journeys/${created.id}`);
      } else {
        const saved = await put(`/v1/journeys/${journey.id}`, body);
        setDirty(false);
        setNotice(t('saved', { v: saved.version }));
        onChanged(saved);
      }
    });
  const lifecycle = (action) =>
    act(async () => {
      const saved = await post(`/v1/journeys/${journey.id}/${action}`);
      setConfirm(null);
      onChanged(saved);
    });
  const dryRun = () =>
    act(async () => {
      setDry(await get(`/v1/journeys/${journey.id}/dry-run`));
    });
  const remove = () =>
    act(async () => {
      await del(`/v1/journeys/${journey.id}`);
      setConfirm(null);
      release();
      navigate('/journeys');
    });
  const add = () => {
    const tplId = templates.data && templates.data.items[0] ? templates.data.items[0].id : 1;
    const [d, id] = addStep(definition, addKind, selected, { couponTemplate: tplId });
    change(d);
    setSelected(id);
  };
  const tabs = [
    { id: 'canvas', label: t('canvas') },
    ...(isNew
      ? []
      : [
          { id: 'stats', label: t('stats') },
          { id: 'runs', label: t('runs') },
          { id: 'versions', label: t('versions') },
        ]),
  ];
  const active = tabs.some((x) => x.id === tab) ? tab : 'canvas';
  // A version loaded from the versions tab: onto the canvas, to be saved as the newest.
  useEffect(() => {
    if (active !== 'canvas' || !pendingVersion) return;
    const v = pendingVersion;
    pendingVersion = null;
    setDefinition(v.definition);
    setDirty(true);
    setError(null);
    setNotice(t('loaded', { v: v.version }));
  }, [active]);
  const steps = definition.steps || {};
  const sel = selected === TRIGGER || steps[selected] ? selected : TRIGGER;
  const segList = (segments.data && segments.data.items) || [];
  const panelRest = fault && fault.node === sel ? fault.rest : null;

  return (
    <div data-testid="journey-editor">
      <div class="page-head">
        <h1>
          {isNew ? t('newTitle') : journey.name} {!isNew && <span class="muted seg-ver">v{journey.version}</span>}
        </h1>
        {!isNew && <StatusBadge status={status} />}
        {dirty && !isNew && <span class="badge warn">{t('unsaved')}</span>}
      </div>
      <div class="jn-toolbar">
        <div class="jn-names">
          <Field label={t('name')} error={nameError}>
            {(p) => <input {...p} name="name" value={name} disabled={readOnly} onInput={(e) => { setName(e.currentTarget.value); setDirty(true); }} />}
          </Field>
          <Field label={t('description')} error={descError}>
            {(p) => <input {...p} name="description" value={description} disabled={readOnly} onInput={(e) => { setDescription(e.currentTarget.value); setDirty(true); }} />}
          </Field>
        </div>
        <div class="actions">
          {!readOnly && (
            <button type="button" class="primary" disabled={busy} onClick={save} data-testid="save-journey">
              {busy ? t('saving') : isNew ? t('create') : t('saveVersion')}
            </button>
          )}
          {!isNew && (
            <button type="button" disabled={busy} onClick={dryRun} data-testid="dry-run-button">
              {t('dryRun')}
            </button>
          )}
          {!isNew && manage && (status === 'draft' || status === 'paused') && (
            <button type="button" disabled={busy || dirty} title={dirty ? t('saveFirst') : undefined} onClick={() => lifecycle('activate')} data-testid="activate">
              {t('activate')}
            </button>
          )}
          {!isNew && manage && status === 'active' && (
            <button type="button" disabled={busy} onClick={() => lifecycle('pause')} data-testid="pause">
              {t('pause')}
            </button>
          )}
          {!isNew && manage && status !== 'archived' && (
            <button type="button" class="danger" disabled={busy} onClick={() => { setError(null); setConfirm('archive'); }} data-testid="archive">
              {t('archive')}
            </button>
          )}
          {!isNew && manage && (
            <button
              type="button"
              disabled={busy}
              data-testid="copy-journey"
              onClick={() => {
                // The copy takes the changes not saved yet along: nothing is lost, nothing to ask.
                pendingCopy = { name: t('copyName', { name }), description, definition };
                release();
                navigate('/journeys/new');
              }}
            >
              {t('copy')}
            </button>
          )}
          {!isNew && manage && status === 'draft' && !journey.activated_at && (
            <button type="button" class="danger" disabled={busy} onClick={() => { setError(null); setConfirm('delete'); }}>
              {t('delete')}
            </button>
          )}
        </div>
      </div>
      {dirty && !isNew && manage && (status === 'draft' || status === 'paused') && <p class="hint">{t('saveFirst')}</p>}
      {notice && (
        <p class="good-text" role="status">
          {notice}
        </p>
      )}
      {generalError && confirm === null && <ErrorBox error={generalError} />}
      {fault && (
        <div class="state error" role="alert" data-testid="journey-error">
          <strong>{fault.node === TRIGGER ? t('trigger') : fault.node}</strong>: {faultText}
        </div>
      )}
      {!manage && <p class="muted">{t('readOnly')}</p>}
      <DryRun result={dry} />
      <Tabs label={t('title')} tabs={tabs} active={active} onChange={(x) => !isNew && navigate(`/journeys/${journey.id}`, { tab: x })} />
      {active === 'canvas' && (
        <div class="jn-layout">
          <div class="jn-main">
            <Canvas
              definition={definition}
              selected={sel}
              onSelect={setSelected}
              fault={fault}
              faultText={faultText}
              counts={stepCounts(stats.data)}
              entered={stats.data ? stats.data.entered : null}
              tools={
              !readOnly && (
              <div class="jn-add">
                <label for="jn-add-kind">{t('addKind')}</label>
                <select id="jn-add-kind" value={addKind} onChange={(e) => setAddKind(e.currentTarget.value)}>
                  {KINDS.map((k) => (
                    <option value={k}>{t(`k_${k}`)}</option>
                  ))}
                </select>
                <button type="button" onClick={add} data-testid="add-step">
                  {t('addAfter')}
                </button>
              </div>
            )
              }
            />
          </div>
          <aside class="jn-panel card" aria-label={sel === TRIGGER ? t('trigger') : `${t('step')} ${sel}`} data-testid="node-panel">
            <h2>
              {sel === TRIGGER ? t('trigger') : `${t(`k_${kindOf(steps[sel])}`)} · ${sel}`}
            </h2>
            {sel === TRIGGER ? (
              <TriggerPanel definition={definition} onChange={change} rest={panelRest} message={faultText} segments={segList} disabled={readOnly} apiError={error} />
            ) : (
              <StepPanel
                id={sel}
                definition={definition}
                onChange={change}
                onRemove={() => {
                  change(removeStep(definition, sel));
                  setSelected(TRIGGER);
                }}
                rest={panelRest}
                message={faultText}
                segments={segList}
                templates={(templates.data && templates.data.items) || []}
                disabled={readOnly}
                apiError={error}
              />
            )}
          </aside>
        </div>
      )}
      {active === 'stats' && (
        <Async state={stats}>{(s) => <StatsView stats={s} />}</Async>
      )}
      {active === 'runs' && (
        <>
          {manage && status !== 'archived' && <TestSend id={journey.id} />}
          <Runs id={journey.id} />
        </>
      )}
      {active === 'versions' && <Versions id={journey.id} />}
      <Dialog
        open={confirm !== null}
        title={confirm === 'delete' ? t('deleteTitle') : t('archiveTitle')}
        onClose={() => {
          setConfirm(null);
          setError(null);
        }}
      >
        <p>{confirm === 'delete' ? t('deleteText') : t('archiveText')}</p>
        {/* A refusal is shown here, in front of the page (the dialog is modal). */}
        {generalError && (
          <div data-testid="confirm-error">
            <ErrorBox error={generalError} />
          </div>
        )}
        <div class="actions">
          <button type="button" class="danger" disabled={busy} onClick={() => (confirm === 'delete' ? remove() : lifecycle('archive'))} data-testid="confirm">
            {confirm === 'delete' ? t('delete') : t('archive')}
          </button>
          <button
            type="button"
            onClick={() => {
              setConfirm(null);
              setError(null);
            }}
          >
            {t('cancel')}
          </button>
        </div>
      </Dialog>
    </div>
  );
}

function Detail({ id, tab }) {
  const t = useT(strings);
  const state = useApi(`/v1/journeys/${id}`);
  const [journey, setJourney] = useState(null);
  useEffect(() => {
    if (state.data) setJourney(state.data);
  }, [state.data]);
  return (
    <>
      <a href={href('/journeys')}>{t('back')}</a>
      <Async state={state}>{() => journey && <Editor key={`${journey.id}`} journey={journey} tab={tab} onChanged={(j) => setJourney(j)} />}</Async>
    </>
  );
}

export default function Screen({ route }) {
  useSession();
  const t = useT(strings);
  const [first] = route.parts;
  if (!first) return <JourneyList />;
  if (first === 'new') {
    return (
      <>
        <a href={href('/journeys')}>{t('back')}</a>
        <Editor journey={null} onChanged={() => {}} tab="canvas" />
      </>
    );
  }
  const id = Number(first);
  if (!Number.isInteger(id) || id <= 0) return <JourneyList />;
  return <Detail key={id} id={id} tab={route.query.tab} />;
}

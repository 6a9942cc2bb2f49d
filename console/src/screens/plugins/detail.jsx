// One plugin in the shop: its health, runs with progress, dead letters with re-drive, logs, disable.
import { useEffect, useState } from 'preact/hooks';
import { del, get, post } from '../../api.js';
import { useT } from '../../i18n.js';
import { currentLocale, can } from '../../session.js';
import { Async, Card, Dialog, ErrorBox, Stat, Table, useApi } from '../../ui.jsx';
import { dateTime, number } from '../../format.js';
import { LEVELS, STATUSES, statusClass } from './words.js';

const strings = {
  en: {
    health: 'Health',
    status: 'Status',
    lag: 'Lag (events behind)',
    outbox: 'Messages waiting',
    calls: 'Calls',
    failures: 'Failures',
    p50: 'p50 latency',
    p99: 'p99 latency',
    breaker: 'Breaker',
    closed: 'Closed',
    open: 'Open (tripped)',
    failingStreak: '{n} failures in a row',
    retryAt: 'Retry at {t}',
    lastError: 'Last error',
    recentErrors: 'Recent errors',
    deadOpen: 'Open dead letters',
    version: 'Version',
    cursor: 'Cursor',
    report: 'What the plugin reports',
    startRun: 'Run over every customer now',
    runs: 'Runs',
    noRuns: 'No run yet.',
    run: 'Run',
    progress: 'Progress',
    started: 'Started',
    finished: 'Finished',
    error: 'Error',
    resume: 'Resume',
    customers: '{done} of {total} customers',
    deadLetters: 'Dead letters',
    noDead: 'No dead letter: every batch of events went through.',
    events: 'Events',
    attempts: 'Attempts',
    created: 'Created',
    redriven: 'Re-driven',
    redrive: 'Re-drive',
    redriveOf: 'Re-drive dead letter {id}',
    logs: 'Logs',
    noLogs: 'No log line yet.',
    level: 'Level',
    message: 'Message',
    time: 'Time',
    older: 'Older lines',
    disable: 'Disable',
    disableTitle: 'Disable {id}',
    cancel: 'Cancel',
    disableConfirm: 'Disable {id} in this shop? It stops where it is and resumes from there when enabled again.',
    ms: '{n} ms',
  },
  'zh-CN': {
    health: '运行状况',
    status: '状态',
    lag: '延迟（待处理事件）',
    outbox: '待发送消息',
    calls: '调用次数',
    failures: '失败次数',
    p50: 'p50 延迟',
    p99: 'p99 延迟',
    breaker: '熔断器',
    closed: '闭合',
    open: '断开（已熔断）',
    failingStreak: '连续失败 {n} 次',
    retryAt: '将于 {t} 重试',
    lastError: '最近错误',
    recentErrors: '近期错误',
    deadOpen: '未处理死信',
    version: '版本',
    cursor: '游标',
    report: '插件自报状态',
    startRun: '立即对全部客户运行',
    runs: '运行记录',
    noRuns: '尚无运行记录。',
    run: '运行',
    progress: '进度',
    started: '开始时间',
    finished: '结束时间',
    error: '错误',
    resume: '继续',
    customers: '{done} / {total} 位客户',
    deadLetters: '死信',
    noDead: '没有死信：所有事件批次均已处理。',
    events: '事件',
    attempts: '尝试次数',
    created: '创建时间',
    redriven: '重新投递时间',
    redrive: '重新投递',
    redriveOf: '重新投递死信 {id}',
    logs: '日志',
    noLogs: '尚无日志。',
    level: '级别',
    message: '内容',
    time: '时间',
    older: '更早的日志',
    disable: '停用',
    disableTitle: '停用 {id}',
    cancel: '取消',
    disableConfirm: '确定在本店停用 {id}？它会停在当前位置，再次启用时从此处继续。',
    ms: '{n} 毫秒',
  },
};

export function Health({ status, connector }) {
  const t = useT(strings);
  const words = STATUSES[currentLocale()] || STATUSES.en;
  const ms = (v) => (v === null || v === undefined ? '—' : t('ms', { n: number(v, 1) }));
  const tripped = status.status === 'tripped';
  return (
    <Card title={t('health')} id="plugin-health">
      <div class="stats" data-testid="plugin-health">
        <Stat label={t('status')} value={<span class={`badge ${statusClass(status.status)}`}>{words[status.status] || status.status}</span>} testid="plugin-status" />
        {connector ? <Stat label={t('outbox')} value={number(status.outbox ?? 0)} /> : <Stat label={t('lag')} value={number(status.lag)} testid="plugin-lag" />}
        <Stat label={t('calls')} value={number(status.calls.calls)} testid="plugin-calls" />
        <Stat label={t('failures')} value={number(status.calls.failures)} testid="plugin-failures" />
        <Stat label={t('p50')} value={ms(status.calls.p50_ms)} testid="plugin-p50" />
        <Stat label={t('p99')} value={ms(status.calls.p99_ms)} testid="plugin-p99" />
        <Stat label={t('breaker')} value={tripped ? t('open') : t('closed')} testid="plugin-breaker" />
        <Stat label={t('deadOpen')} value={number(status.open_dead_letters)} />
      </div>
      <p class="muted small">
        {t('version')}: <span class="mono">{status.version}</span> · {t('cursor')}: <span class="mono">{status.cursor}</span>
        {status.consecutive_failures > 0 && <> · {t('failingStreak', { n: status.consecutive_failures })}</>}
        {status.retry_at && <> · {t('retryAt', { t: dateTime(status.retry_at) })}</>}
      </p>
      {status.last_error && (
        <p class="state error">
          <strong>{t('lastError')}</strong>: {status.last_error}
        </p>
      )}
      {status.calls.last_errors.length > 0 && (
        <details>
          <summary>{t('recentErrors')}</summary>
          <ul class="mono small">
            {status.calls.last_errors.map((e) => (
              <li>{e}</li>
            ))}
          </ul>
        </details>
      )}
      {status.report && (
        <details>
          <summary>{t('report')}</summary>
          <pre class="mono small">{JSON.stringify(status.report, null, 2)}</pre>
        </details>
      )}
    </Card>
  );
}

function RunProgress({ run }) {
  const t = useT(strings);
  const words = STATUSES[currentLocale()] || STATUSES.en;
  return (
    <div class="run-progress">
      <progress max={Math.max(1, run.total)} value={run.done} aria-label={`${t('run')} ${run.id}`} />{' '}
      <span>{t('customers', { done: number(run.done), total: number(run.total) })}</span>{' '}
      <span class={`badge ${statusClass(run.status)}`} data-testid={`run-${run.id}-status`}>
        {words[run.status] || run.status}
      </span>
    </div>
  );
}

/** Runs, newest first; a running one is followed until it ends. */
export function Runs({ id, runs, onChange }) {
  const t = useT(strings);
  const [live, setLive] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const shown = runs.map((r) => live[r.id] || r);
  const extra = Object.values(live).filter((r) => !runs.some((x) => x.id === r.id));
  const all = [...extra.sort((a, b) => b.id - a.id), ...shown];
  const running = all.filter((r) => r.status === 'running').map((r) => r.id);
  const key = running.join(',');
  useEffect(() => {
    if (!running.length) return undefined;
    let stop = false;
    const timer = setTimeout(async () => {
      try {
        const next = await Promise.all(running.map((r) => get(`/v1/shop/plugins/${encodeURIComponent(id)}/runs/${r}`)));
        if (stop) return;
        setLive((cur) => {
          const out = { ...cur };
          next.forEach((r) => (out[r.id] = r));
          return out;
        });
        if (next.some((r) => r.status !== 'running')) onChange && onChange();
      } catch (err) {
        if (!stop) setError(err);
      }
    }, 700);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [key, JSON.stringify(all.map((r) => [r.id, r.done]))]);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const run = await post(`/v1/shop/plugins/${encodeURIComponent(id)}/runs`);
      setLive((cur) => ({ ...cur, [run.id]: run }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const resume = async (run) => {
    setError(null);
    try {
      const next = await post(`/v1/shop/plugins/${encodeURIComponent(id)}/runs/${run.id}/resume`);
      setLive((cur) => ({ ...cur, [next.id]: next }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div>
      <div class="actions">
        <button type="button" class="primary" onClick={start} disabled={busy || running.length > 0 || !can('plugins:manage')}>
          {t('startRun')}
        </button>
      </div>
      {error && <ErrorBox error={error} />}
      {all.length === 0 ? (
        <p class="state empty">{t('noRuns')}</p>
      ) : (
        <Table
          caption={t('runs')}
          rowKey={(r) => r.id}
          rows={all}
          columns={[
            { key: 'id', label: t('run'), render: (r) => <span class="mono">#{r.id}</span> },
            { key: 'progress', label: t('progress'), render: (r) => <RunProgress run={r} /> },
            { key: 'created_at', label: t('started'), render: (r) => dateTime(r.created_at) },
            { key: 'finished_at', label: t('finished'), render: (r) => (r.finished_at ? dateTime(r.finished_at) : '—') },
            {
              key: 'error',
              label: t('error'),
              render: (r) =>
                r.error ? (
                  <>
                    <span class="small">{r.error}</span>{' '}
                    {r.status === 'failed' && (
                      <button type="button" class="link" onClick={() => resume(r)}>
                        {t('resume')}
                      </button>
                    )}
                  </>
                ) : (
                  '—'
                ),
            },
          ]}
        />
      )}
    </div>
  );
}

export function DeadLetters({ id, onChange }) {
  const t = useT(strings);
  const state = useApi(`/v1/shop/plugins/${encodeURIComponent(id)}/dead-letters`);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);
  const redrive = async (letter) => {
    setBusy(letter.id);
    setError(null);
    try {
      await post(`/v1/shop/plugins/${encodeURIComponent(id)}/dead-letters/${letter.id}/redrive`);
      state.reload();
      onChange && onChange();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  return (
    <div>
      {error && <ErrorBox error={error} />}
      <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noDead')}>
        {(data) => (
          <Table
            caption={t('deadLetters')}
            rowKey={(l) => l.id}
            rows={data.items}
            columns={[
              { key: 'id', label: '#', render: (l) => <span class="mono">{l.id}</span> },
              { key: 'events', label: t('events'), render: (l) => <span class="mono">{l.first_seq === l.last_seq ? l.first_seq : `${l.first_seq}–${l.last_seq}`}</span> },
              { key: 'attempts', label: t('attempts'), class: 'num', render: (l) => number(l.attempts) },
              { key: 'error', label: t('error'), render: (l) => <span class="small">{l.error}</span> },
              { key: 'created_at', label: t('created'), render: (l) => dateTime(l.created_at) },
              {
                key: 'redrive',
                label: t('redriven'),
                render: (l) =>
                  l.redriven_at ? (
                    dateTime(l.redriven_at)
                  ) : (
                    <button type="button" onClick={() => redrive(l)} disabled={busy === l.id || !can('plugins:manage')} aria-label={t('redriveOf', { id: l.id })}>
                      {t('redrive')}
                    </button>
                  ),
              },
            ]}
          />
        )}
      </Async>
    </div>
  );
}

export function Logs({ id }) {
  const t = useT(strings);
  const [before, setBefore] = useState(null);
  const [older, setOlder] = useState([]);
  const state = useApi(`/v1/shop/plugins/${encodeURIComponent(id)}/logs`, { limit: 50 });
  const [error, setError] = useState(null);
  const more = async (last) => {
    try {
      const page = await get(`/v1/shop/plugins/${encodeURIComponent(id)}/logs`, { limit: 50, before: last });
      setOlder((cur) => [...cur, ...page.items]);
      setBefore(page.items.length === 50 ? page.items[page.items.length - 1].id : 0);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noLogs')}>
      {(data) => {
        const rows = [...data.items, ...older];
        const next = before === null ? (data.items.length === 50 ? data.items[data.items.length - 1].id : 0) : before;
        return (
          <>
            <Table
              caption={t('logs')}
              rowKey={(l) => l.id}
              rows={rows}
              columns={[
                { key: 'created_at', label: t('time'), render: (l) => dateTime(l.created_at) },
                { key: 'level', label: t('level'), render: (l) => <span class={`badge ${l.level === 'warn' || l.level === 'error' ? 'warn' : ''}`}>{(LEVELS[currentLocale()] || LEVELS.en)[l.level] || l.level}</span> },
                { key: 'message', label: t('message'), render: (l) => <span class="mono small log-line">{l.message}</span> },
              ]}
            />
            {error && <ErrorBox error={error} />}
            {next > 0 && (
              <button type="button" onClick={() => more(next)}>
                {t('older')}
              </button>
            )}
          </>
        );
      }}
    </Async>
  );
}

export function DisableButton({ id, onDone }) {
  const t = useT(strings);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState(false);
  const disable = async () => {
    setBusy(true);
    setError(null);
    try {
      await del(`/v1/shop/plugins/${encodeURIComponent(id)}`);
      setAsking(false);
      onDone && onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class="danger" onClick={() => setAsking(true)}>
        {t('disable')}
      </button>
      <Dialog open={asking} title={t('disableTitle', { id })} onClose={() => setAsking(false)}>
        <p>{t('disableConfirm', { id })}</p>
        {error && <ErrorBox error={error} />}
        <div class="actions">
          <button type="button" class="danger" onClick={disable} disabled={busy}>
            {t('disable')}
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            {t('cancel')}
          </button>
        </div>
      </Dialog>
    </>
  );
}

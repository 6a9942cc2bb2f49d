// The outbox (GET /v1/messages, filtered by status and customer, paged by cursor), one message
// with its receipts (GET /v1/messages/{id}), and a customer's consents (GET/PUT /v1/customers/{id}/consents…).
import { useState } from 'preact/hooks';
import { put } from '../../api.js';
import { useT } from '../../i18n.js';
import { href, navigate } from '../../router.js';
import { can } from '../../session.js';
import { Async, Card, Dialog, ErrorBox, Field, Table, useApi } from '../../ui.jsx';
import { dateTime, number } from '../../format.js';
import { channelName, CustomerLookup, sourceName } from '../loyalty/common.jsx';

const STATUSES = ['queued', 'sending', 'sent', 'delivered', 'failed', 'suppressed'];

const strings = {
  en: {
    outbox: 'Outbox',
    status: 'Status',
    all: 'All statuses',
    customer: 'Customer',
    customerId: 'Customer id',
    filter: 'Filter',
    clear: 'Clear',
    none: 'No message matches.',
    noneAtAll: 'No message has been sent yet. Journeys and the API send through the channels’ connectors.',
    created: 'Created',
    channel: 'Channel',
    template: 'Template',
    recipient: 'Recipient',
    attempts: 'Attempts',
    sent: 'Sent',
    delivered: 'Delivered',
    details: 'Details',
    detailsOf: 'Details of message {id}',
    next: 'Next page',
    prev: 'Previous page',
    first: 'First page',
    page: 'Page {n}',
    message: 'Message {id}',
    reason: 'Reason',
    connector: 'Connector',
    providerId: 'Provider’s id',
    source: 'Source',
    nextAttempt: 'Next attempt',
    variables: 'Variables',
    history: 'Status history and receipts',
    time: 'Time',
    detail: 'Detail',
    noHistory: 'No status change yet.',
    queued: 'Queued',
    sending: 'Sending',
    sentS: 'Sent',
    deliveredS: 'Delivered',
    failed: 'Failed',
    suppressed: 'Suppressed',
    consents: 'Consents',
    consentsIntro: 'Whether a customer agreed to get messages on a channel. Without consent, marketing messages are suppressed.',
    lookup: 'Show consents',
    enterCustomer: 'Enter a customer id to see their consents.',
    noConsents: 'No consent recorded for this customer: the shop’s default applies on every channel.',
    optedIn: 'Opted in',
    optedOut: 'Opted out',
    updated: 'Updated',
    change: 'Change',
    optIn: 'Opt in',
    optOut: 'Opt out',
    optInOn: 'Opt in on {channel}',
    optOutOn: 'Opt out on {channel}',
    record: 'Record a consent',
    recordButton: 'Record',
    profile: 'Open the customer’s profile',
  },
  'zh-CN': {
    outbox: '发件箱',
    status: '状态',
    all: '全部状态',
    customer: '客户',
    customerId: '客户 ID',
    filter: '筛选',
    clear: '清除',
    none: '没有匹配的消息。',
    noneAtAll: '还没有发送过消息。营销流程和 API 通过各渠道的连接器发送消息。',
    created: '创建时间',
    channel: '渠道',
    template: '模板',
    recipient: '接收人',
    attempts: '尝试次数',
    sent: '发送时间',
    delivered: '送达时间',
    details: '详情',
    detailsOf: '消息 {id} 的详情',
    next: '下一页',
    prev: '上一页',
    first: '第一页',
    page: '第 {n} 页',
    message: '消息 {id}',
    reason: '原因',
    connector: '连接器',
    providerId: '服务商编号',
    source: '来源',
    nextAttempt: '下次尝试',
    variables: '变量',
    history: '状态记录与回执',
    time: '时间',
    detail: '说明',
    noHistory: '暂无状态变化。',
    queued: '排队中',
    sending: '发送中',
    sentS: '已发送',
    deliveredS: '已送达',
    failed: '失败',
    suppressed: '已拦截',
    consents: '订阅授权',
    consentsIntro: '客户是否同意在某渠道接收消息。未授权时营销消息会被拦截。',
    lookup: '查看授权',
    enterCustomer: '输入客户 ID 查看其授权。',
    noConsents: '该客户没有授权记录：各渠道按店铺默认规则处理。',
    optedIn: '已同意',
    optedOut: '已退订',
    updated: '更新时间',
    change: '修改',
    optIn: '同意接收',
    optOut: '退订',
    optInOn: '在 {channel} 同意接收',
    optOutOn: '在 {channel} 退订',
    record: '记录授权',
    recordButton: '记录',
    profile: '打开客户详情',
  },
};

const statusWord = (t, s) => t({ sent: 'sentS', delivered: 'deliveredS' }[s] || s);
const statusClass = (s) => (s === 'delivered' || s === 'sent' ? 'good' : s === 'failed' ? 'bad' : s === 'suppressed' ? 'warn' : '');

function MessageDetail({ id }) {
  const t = useT(strings);
  const state = useApi(`/v1/messages/${encodeURIComponent(id)}`);
  return (
    <Async state={state}>
      {(m) => (
        <div data-testid="message-detail">
          <dl class="facts">
            <dt>{t('status')}</dt>
            <dd>
              <span class={`badge ${statusClass(m.status)}`}>{statusWord(t, m.status)}</span>
            </dd>
            {m.reason && (
              <>
                <dt>{t('reason')}</dt>
                <dd>{m.reason}</dd>
              </>
            )}
            <dt>{t('customer')}</dt>
            <dd>
              <a href={href(`/customers/${m.customer_id}`)}>#{m.customer_id}</a>
            </dd>
            <dt>{t('channel')}</dt>
            <dd>{channelName(m.channel)}</dd>
            <dt>{t('template')}</dt>
            <dd class="mono">{m.template}</dd>
            <dt>{t('recipient')}</dt>
            <dd>{m.recipient || '—'}</dd>
            <dt>{t('connector')}</dt>
            <dd>{m.plugin_id ? <a href={href(`/plugins/${encodeURIComponent(m.plugin_id)}`)}>{m.plugin_id}</a> : '—'}</dd>
            <dt>{t('providerId')}</dt>
            <dd class="mono">{m.provider_id || '—'}</dd>
            <dt>{t('attempts')}</dt>
            <dd>{number(m.attempts)}</dd>
            {m.next_attempt_at && (
              <>
                <dt>{t('nextAttempt')}</dt>
                <dd>{dateTime(m.next_attempt_at)}</dd>
              </>
            )}
            <dt>{t('source')}</dt>
            <dd>{sourceName(m.source)}</dd>
            <dt>{t('created')}</dt>
            <dd>{dateTime(m.created_at)}</dd>
            <dt>{t('sent')}</dt>
            <dd>{dateTime(m.sent_at)}</dd>
            <dt>{t('delivered')}</dt>
            <dd>{dateTime(m.delivered_at)}</dd>
          </dl>
          {Object.keys(m.variables || {}).length > 0 && (
            <>
              <h3>{t('variables')}</h3>
              <dl class="facts mono small">
                {Object.entries(m.variables).map(([k, v]) => (
                  <>
                    <dt>{k}</dt>
                    <dd>{v}</dd>
                  </>
                ))}
              </dl>
            </>
          )}
          <h3>{t('history')}</h3>
          {m.history.length === 0 ? (
            <p class="muted">{t('noHistory')}</p>
          ) : (
            <Table
              rows={m.history}
              columns={[
                { key: 'at', label: t('time'), render: (e) => dateTime(e.at) },
                { key: 'status', label: t('status'), render: (e) => <span class={`badge ${statusClass(e.status)}`}>{statusWord(t, e.status)}</span> },
                { key: 'detail', label: t('detail'), render: (e) => <span class="small">{e.detail}</span> },
              ]}
            />
          )}
        </div>
      )}
    </Async>
  );
}

export function Outbox({ query, messageId }) {
  const t = useT(strings);
  const status = STATUSES.includes(query.status) ? query.status : '';
  const customer = query.customer && /^\d+$/.test(query.customer) ? query.customer : '';
  const cursors = (query.cursors || '').split(',').filter(Boolean); // the pages before this one
  const cursor = cursors.length ? cursors[cursors.length - 1] : undefined;
  const [cust, setCust] = useState(customer);
  const state = useApi('/v1/messages', { status: status || undefined, customer_id: customer || undefined, cursor, limit: 50 });
  const go = (q, id) => navigate(`/messages/outbox${id ? `/${encodeURIComponent(id)}` : ''}`, { status: q.status, customer: q.customer, cursors: q.cursors });
  const base = { status, customer, cursors: cursors.join(',') };
  const filtered = !!(status || customer);
  return (
    <Card title={t('outbox')} id="outbox">
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go({ status, customer: cust.trim() });
        }}
      >
        <div class="field">
          <label for="outbox-status">{t('status')}</label>
          <select id="outbox-status" value={status} onChange={(e) => go({ status: e.currentTarget.value, customer })}>
            <option value="">{t('all')}</option>
            {STATUSES.map((s) => (
              <option value={s}>{statusWord(t, s)}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="outbox-customer">{t('customerId')}</label>
          <input id="outbox-customer" inputMode="numeric" value={cust} onInput={(e) => setCust(e.currentTarget.value)} />
        </div>
        <button type="submit">{t('filter')}</button>
        {filtered && (
          <button
            type="button"
            class="link"
            onClick={() => {
              setCust('');
              go({});
            }}
          >
            {t('clear')}
          </button>
        )}
      </form>
      <Async state={state} isEmpty={(d) => d.items.length === 0 && !cursor} empty={filtered ? t('none') : t('noneAtAll')}>
        {(data) => (
          <>
            <Table
              rowKey={(m) => m.id}
              rows={data.items}
              columns={[
                { key: 'created_at', label: t('created'), render: (m) => dateTime(m.created_at) },
                { key: 'customer', label: t('customer'), render: (m) => <a href={href(`/customers/${m.customer_id}`)}>#{m.customer_id}</a> },
                { key: 'channel', label: t('channel'), render: (m) => channelName(m.channel) },
                { key: 'template', label: t('template'), render: (m) => <span class="mono">{m.template}</span> },
                { key: 'recipient', label: t('recipient'), render: (m) => m.recipient || '—' },
                {
                  key: 'status',
                  label: t('status'),
                  render: (m) => (
                    <>
                      <span class={`badge ${statusClass(m.status)}`} data-testid="message-status">
                        {statusWord(t, m.status)}
                      </span>
                      {m.reason && <div class="small muted">{m.reason}</div>}
                    </>
                  ),
                },
                { key: 'attempts', label: t('attempts'), class: 'num', render: (m) => number(m.attempts) },
                { key: 'delivered_at', label: t('delivered'), render: (m) => (m.delivered_at ? dateTime(m.delivered_at) : '—') },
                {
                  key: 'details',
                  label: t('details'),
                  render: (m) => (
                    <a href={href(`/messages/outbox/${encodeURIComponent(m.id)}`, Object.fromEntries(Object.entries(base).filter(([, v]) => v)))} aria-label={t('detailsOf', { id: m.id })}>
                      {t('details')}
                    </a>
                  ),
                },
              ]}
            />
            <nav class="pager" aria-label={t('outbox')}>
              {cursors.length > 0 && (
                <button type="button" onClick={() => go({ status, customer, cursors: cursors.slice(0, -1).join(',') })}>
                  {t('prev')}
                </button>
              )}
              <span class="muted">{t('page', { n: cursors.length + 1 })}</span>
              {data.next_cursor && (
                <button type="button" onClick={() => go({ status, customer, cursors: [...cursors, data.next_cursor].join(',') })}>
                  {t('next')}
                </button>
              )}
            </nav>
          </>
        )}
      </Async>
      <Dialog open={!!messageId} title={messageId ? t('message', { id: messageId }) : ''} onClose={() => go(base)}>
        {messageId && <MessageDetail id={messageId} />}
      </Dialog>
    </Card>
  );
}

export function Consents({ customer, channels }) {
  const t = useT(strings);
  const [text, setText] = useState(customer || '');
  const id = customer && /^\d+$/.test(customer) ? customer : null;
  const state = useApi(id ? `/v1/customers/${id}/consents` : null);
  const [error, setError] = useState(null);
  const [newChannel, setNewChannel] = useState('');
  const write = can('customers:write');
  const set = async (channel, status) => {
    setError(null);
    try {
      await put(`/v1/customers/${id}/consents/${encodeURIComponent(channel)}`, { status, source: 'console' });
      state.reload();
    } catch (err) {
      setError(err);
    }
  };
  const fieldErr = error && error.field && ['channel', 'status', 'source'].includes(error.field) ? error.message : null;
  return (
    <Card title={t('consents')} id="consents">
      <p class="muted">{t('consentsIntro')}</p>
      <CustomerLookup
        value={text}
        onInput={setText}
        onSubmit={(customer) => navigate('/messages/consents', { customer })}
        button={t('lookup')}
        prompt={t('enterCustomer')}
        id={id}
      >
          {error && !fieldErr && <ErrorBox error={error} />}
          <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noConsents')}>
            {(data) => (
              <Table
                rowKey={(c) => c.channel}
                rows={data.items}
                columns={[
                  { key: 'channel', label: t('channel'), render: (c) => channelName(c.channel) },
                  { key: 'status', label: t('status'), render: (c) => <span class={`badge ${c.status === 'opted_in' ? 'good' : 'bad'}`}>{c.status === 'opted_in' ? t('optedIn') : t('optedOut')}</span> },
                  { key: 'source', label: t('source'), render: (c) => sourceName(c.source) },
                  { key: 'updated_at', label: t('updated'), render: (c) => dateTime(c.updated_at) },
                  ...(write
                    ? [
                        {
                          key: 'change',
                          label: t('change'),
                          render: (c) =>
                            c.status === 'opted_in' ? (
                              <button type="button" onClick={() => set(c.channel, 'opted_out')} aria-label={t('optOutOn', { channel: channelName(c.channel) })}>
                                {t('optOut')}
                              </button>
                            ) : (
                              <button type="button" onClick={() => set(c.channel, 'opted_in')} aria-label={t('optInOn', { channel: channelName(c.channel) })}>
                                {t('optIn')}
                              </button>
                            ),
                        },
                      ]
                    : []),
                ]}
              />
            )}
          </Async>
          {write && (
            <form
              class="toolbar"
              aria-label={t('record')}
              onSubmit={(e) => {
                e.preventDefault();
                const ch = newChannel.trim().toLowerCase();
                if (ch) set(ch, e.submitter && e.submitter.value === 'out' ? 'opted_out' : 'opted_in');
              }}
            >
              <Field label={t('channel')} error={fieldErr}>
                {(p) => (
                  <>
                    <input {...p} list="consent-channels" name="channel" value={newChannel} onInput={(e) => setNewChannel(e.currentTarget.value)} placeholder="sms" />
                    <datalist id="consent-channels">
                      {channels.map((c) => (
                        <option value={c}>{channelName(c)}</option>
                      ))}
                    </datalist>
                  </>
                )}
              </Field>
              <button type="submit" value="in">
                {t('optIn')}
              </button>
              <button type="submit" value="out">
                {t('optOut')}
              </button>
            </form>
          )}
      </CustomerLookup>
    </Card>
  );
}

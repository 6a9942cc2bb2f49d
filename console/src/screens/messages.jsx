// Messages: the channels and the connectors serving them, caps, quiet hours and cost per channel;
// the outbox with statuses and receipts; a customer's consents.
// Routes: `#/messages[/channels]`, `#/messages/outbox[/<message id>]?status=&customer=`, `#/messages/consents?customer=`.
import { useT } from '../i18n.js';
import { href, navigate } from '../router.js';
import { can } from '../session.js';
import { Async, Card, Table, Tabs, useApi } from '../ui.jsx';
import { Policies, policySummary, policyStrings } from './messages/policies.jsx';
import { Consents, Outbox } from './messages/outbox.jsx';
import { translate } from '../i18n.js';
import { channelName } from './loyalty/common.jsx';
import './plugins.css';
import './loyalty.css';
import './messages.css';

const strings = {
  en: {
    title: 'Messages',
    sections: 'Message sections',
    channels: 'Channels',
    outbox: 'Outbox',
    consents: 'Consents',
    channelsTitle: 'Channels and their connectors',
    noChannels: 'No channel can send yet: enable a channel connector (SMS, e-mail, webhook) in the plugin market.',
    channel: 'Channel',
    connector: 'Connector',
    receipts: 'Receipt address for the provider',
    policy: 'Policy',
    available: 'Connectors you can enable',
    enable: 'Enable {id}',
    needsScope: 'Channels and their policies need the messages:manage permission.',
    enabled: 'Sending',
    disabled: 'Connector disabled: not sending',
    tripped: 'Breaker open: not sending',
  },
  'zh-CN': {
    title: '消息',
    sections: '消息功能分区',
    channels: '渠道',
    outbox: '发件箱',
    consents: '订阅授权',
    channelsTitle: '渠道及其连接器',
    noChannels: '还没有可发送的渠道：请在插件市场启用一个渠道连接器（短信、邮件、Webhook）。',
    channel: '渠道',
    connector: '连接器',
    receipts: '提供给服务商的回执地址',
    policy: '策略',
    available: '可启用的连接器',
    enable: '启用 {id}',
    needsScope: '渠道及其策略需要 messages:manage 权限。',
    enabled: '发送中',
    disabled: '连接器已停用：不发送',
    tripped: '已熔断：不发送',
  },
};

function Channels() {
  const t = useT(strings);
  const manage = can('messages:manage');
  const routes = useApi(manage ? '/v1/shop/channels' : null);
  const settings = useApi(manage ? '/v1/shop/settings/messaging' : null);
  const catalogue = useApi(can('plugins:manage') ? '/v1/plugins' : null);
  const subs = useApi(can('plugins:manage') ? '/v1/shop/plugins' : null);
  const subStatus = new Map(((subs.data && subs.data.items) || []).map((s) => [s.plugin_id, s.status]));
  if (!manage) return <p class="muted">{t('needsScope')}</p>;
  const policyOf = (ch) => (settings.data && settings.data.channels[ch]) || { cost_per_message: 0 };
  return (
    <>
      <Card title={t('channelsTitle')} id="channels">
        <Async state={routes} isEmpty={(d) => d.items.length === 0} empty={t('noChannels')}>
          {(data) => (
            <Table
              rowKey={(r) => r.channel}
              rows={data.items}
              columns={[
                { key: 'channel', label: t('channel'), render: (r) => <span class="badge">{channelName(r.channel)}</span> },
                {
                  key: 'plugin_id',
                  label: t('connector'),
                  render: (r) => {
                    const st = subStatus.get(r.plugin_id);
                    return (
                      <>
                        <a href={href(`/plugins/${encodeURIComponent(r.plugin_id)}`)}>{r.plugin_id}</a>{' '}
                        {st && <span class={`badge ${st === 'enabled' ? 'good' : st === 'tripped' ? 'bad' : 'warn'}`}>{t(st)}</span>}
                      </>
                    );
                  },
                },
                { key: 'receipt_path', label: t('receipts'), render: (r) => <span class="mono small">{`${location.origin}${r.receipt_path}`}</span> },
                { key: 'policy', label: t('policy'), render: (r) => <span class="small">{policySummary((k, v) => translate(policyStrings, k, v), policyOf(r.channel))}</span> },
              ]}
            />
          )}
        </Async>
        {catalogue.data && routes.data && (
          <AvailableConnectors catalogue={catalogue.data.items} routed={routes.data.items.map((r) => r.plugin_id)} />
        )}
      </Card>
      {routes.data || routes.error ? <Policies state={settings} channels={routes.data ? routes.data.items.map((r) => r.channel) : []} /> : null}
    </>
  );
}

function AvailableConnectors({ catalogue, routed }) {
  const t = useT(strings);
  const seen = new Set();
  const connectors = catalogue
    .map((p) => p.manifest)
    .filter((m) => m.kind === 'channel-connector' && !routed.includes(m.id) && !seen.has(m.id) && seen.add(m.id));
  if (!connectors.length) return null;
  return (
    <div class="available">
      <h3>{t('available')}</h3>
      <ul>
        {connectors.map((m) => (
          <li>
            <a href={href(`/plugins/${encodeURIComponent(m.id)}`)} aria-label={t('enable', { id: m.id })}>
              {m.id}
            </a>{' '}
            <span class="badge">{channelName(m.channel)}</span> <span class="muted small">{m.description}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  // A role without messages:manage lands on what it may see: the outbox.
  const tab = ['channels', 'outbox', 'consents'].includes(route.parts[0]) ? route.parts[0] : can('messages:manage') ? 'channels' : 'outbox';
  const tabs = [
    { id: 'channels', label: t('channels') },
    { id: 'outbox', label: t('outbox') },
    { id: 'consents', label: t('consents') },
  ];
  const routes = useApi(tab === 'consents' && can('messages:manage') ? '/v1/shop/channels' : null);
  const known = [...new Set([...((routes.data && routes.data.items.map((r) => r.channel)) || []), 'sms', 'email'])];
  return (
    <>
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <Tabs tabs={tabs} active={tab} label={t('sections')} onChange={(id) => navigate(`/messages/${id}`)} />
      <div role="tabpanel" aria-label={tabs.find((x) => x.id === tab).label}>
        {tab === 'channels' && <Channels />}
        {tab === 'outbox' && <Outbox query={route.query} messageId={route.parts[1]} />}
        {tab === 'consents' && <Consents customer={route.query.customer} channels={known} />}
      </div>
    </>
  );
}

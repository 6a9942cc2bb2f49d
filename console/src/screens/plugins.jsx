// The plugin market (插件市场): the catalogue with each plugin's state in this shop (`#/plugins`),
// and one plugin (`#/plugins/<id>?tab=…`): enable it with a form from its configuration schema and
// the capabilities to grant, its health (status, lag, calls, failures, p50/p99, breaker), runs
// with progress, dead letters with re-drive, logs; disable it.
import { useState } from 'preact/hooks';
import { useT } from '../i18n.js';
import { href, navigate } from '../router.js';
import { currentLocale, can } from '../session.js';
import { Async, Card, ErrorBox, Loading, Table, Tabs, useApi } from '../ui.jsx';
import { KINDS, STATUSES, statusClass } from './plugins/words.js';
import EnableForm from './plugins/enable-form.jsx';
import { channelName } from './loyalty/common.jsx';
import { Health, Runs, DeadLetters, Logs, DisableButton } from './plugins/detail.jsx';
import './plugins.css';

const strings = {
  en: {
    title: 'Plugins',
    intro: 'Tag rules, scoring models, loyalty schemes and channel connectors. Enable one in this shop, grant it what it needs, and watch how it runs.',
    plugin: 'Plugin',
    kind: 'Kind',
    version: 'Version',
    vendor: 'Vendor',
    status: 'In this shop',
    description: 'Description',
    all: 'All kinds',
    show: 'Show',
    search: 'Search plugins',
    none: 'No plugin is installed in the catalogue yet.',
    noMatch: 'No plugin matches.',
    open: 'Open',
    back: '← All plugins',
    configure: 'Configure',
    enableTitle: 'Enable in this shop',
    runs: 'Runs',
    deadLetters: 'Dead letters',
    logs: 'Logs',
    health: 'Health',
    noScope: 'Your role cannot manage plugins.',
    noScopeWhy: 'The plugin market, each plugin’s settings and its health are for roles with the plugins:manage permission (the owner, operators); the kernel shows the plugin catalogue to those roles only. Ask the shop’s owner if you need a plugin enabled or changed.',
    catalogue: 'Catalogue',
    versions: 'Installed versions: {v}',
    notEnabledYet: 'This plugin is not enabled in this shop. Fill in its configuration and choose what to grant.',
  },
  'zh-CN': {
    title: '插件市场',
    intro: '标签规则、评分模型、积分方案和渠道连接器。在本店启用插件，授予它所需的权限，并查看运行情况。',
    plugin: '插件',
    kind: '类型',
    version: '版本',
    vendor: '开发者',
    status: '本店状态',
    description: '说明',
    all: '全部类型',
    show: '显示',
    search: '搜索插件',
    none: '插件目录中还没有插件。',
    noMatch: '没有匹配的插件。',
    open: '打开',
    back: '← 全部插件',
    configure: '配置',
    enableTitle: '在本店启用',
    runs: '运行',
    deadLetters: '死信',
    logs: '日志',
    health: '运行状况',
    noScope: '您的角色无法管理插件。',
    noScopeWhy: '插件市场、各插件的设置和运行状况仅对拥有 plugins:manage 权限的角色（店主、运营）开放；插件目录也只向这些角色显示。如需启用或修改插件，请联系店主。',
    catalogue: '插件目录',
    versions: '已安装版本：{v}',
    notEnabledYet: '此插件尚未在本店启用。请填写配置并选择授予的权限。',
  },
};

function latestById(items) {
  const byId = new Map();
  for (const p of items) byId.set(p.manifest.id, p); // oldest first: the last one wins
  return [...byId.values()].sort((a, b) => a.manifest.id.localeCompare(b.manifest.id));
}

function StatusBadge({ status }) {
  const words = STATUSES[currentLocale()] || STATUSES.en;
  return <span class={`badge ${statusClass(status)}`}>{words[status || 'none'] || status}</span>;
}

function Catalogue() {
  const t = useT(strings);
  const catalogue = useApi('/v1/plugins');
  const shop = useApi('/v1/shop/plugins');
  const [kind, setKind] = useState('');
  const [q, setQ] = useState('');
  const kinds = KINDS[currentLocale()] || KINDS.en;
  const subs = new Map(((shop.data && shop.data.items) || []).map((s) => [s.plugin_id, s]));
  return (
    <>
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <p class="muted">{t('intro')}</p>
      <div class="toolbar">
        <div class="field">
          <label for="plugin-search">{t('search')}</label>
          <input id="plugin-search" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="plugin-kind">{t('kind')}</label>
          <select id="plugin-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">{t('all')}</option>
            {Object.entries(kinds).map(([k, label]) => (
              <option value={k}>{label}</option>
            ))}
          </select>
        </div>
      </div>
      {shop.error && <ErrorBox error={shop.error} onRetry={shop.reload} />}
      <Card title={t('catalogue')} id="catalogue">
        <Async state={catalogue} isEmpty={(d) => d.items.length === 0} empty={t('none')}>
          {(data) => {
            const needle = q.trim().toLowerCase();
            const rows = latestById(data.items).filter(
              (p) => (!kind || p.manifest.kind === kind) && (!needle || `${p.manifest.id} ${p.manifest.description} ${p.manifest.vendor}`.toLowerCase().includes(needle)),
            );
            if (!rows.length) return <p class="muted">{t('noMatch')}</p>;
            return (
              <Table
                rowKey={(p) => p.manifest.id}
                rows={rows}
                columns={[
                  {
                    key: 'id',
                    label: t('plugin'),
                    render: (p) => (
                      <a href={href(`/plugins/${encodeURIComponent(p.manifest.id)}`)} data-testid={`plugin-${p.manifest.id}`}>
                        {p.manifest.id}
                      </a>
                    ),
                  },
                  { key: 'kind', label: t('kind'), render: (p) => kinds[p.manifest.kind] || p.manifest.kind },
                  { key: 'description', label: t('description'), render: (p) => <span class="desc">{p.manifest.description}</span> },
                  { key: 'version', label: t('version'), render: (p) => <span class="mono">{p.manifest.version}</span> },
                  { key: 'vendor', label: t('vendor'), render: (p) => p.manifest.vendor },
                  { key: 'status', label: t('status'), render: (p) => (shop.loading && !shop.data ? '…' : <StatusBadge status={subs.get(p.manifest.id)?.status} />) },
                ]}
              />
            );
          }}
        </Async>
      </Card>
    </>
  );
}

function Detail({ id, tab }) {
  const t = useT(strings);
  const versions = useApi(`/v1/plugins/${encodeURIComponent(id)}`);
  const status = useApi(`/v1/shop/plugins/${encodeURIComponent(id)}`);
  const kinds = KINDS[currentLocale()] || KINDS.en;
  const notEnabled = status.error && status.error.status === 404;
  const sub = status.data || null;
  const setTab = (next) => navigate(`/plugins/${encodeURIComponent(id)}`, next === 'configure' ? undefined : { tab: next });
  return (
    <>
      <p>
        <a href={href('/plugins')}>{t('back')}</a>
      </p>
      <Async state={versions}>
        {(data) => {
          const manifest = data.items[data.items.length - 1].manifest;
          const connector = manifest.kind === 'channel-connector';
          const tabs = [{ id: 'configure', label: t('configure') }];
          if (sub) {
            if (!connector) tabs.push({ id: 'runs', label: t('runs') });
            tabs.push({ id: 'dead-letters', label: t('deadLetters') }, { id: 'logs', label: t('logs') });
          }
          const active = tabs.some((x) => x.id === tab) ? tab : 'configure';
          return (
            <>
              <div class="page-head">
                <h1>
                  {manifest.id} <span class="mono muted small">{manifest.version}</span>
                </h1>
                {sub && <StatusBadge status={sub.status} />}
                {!sub && notEnabled && <StatusBadge status={null} />}
                {sub && sub.status !== 'disabled' && can('plugins:manage') && <DisableButton id={id} onDone={status.reload} />}
              </div>
              <p>
                <span class="badge">{kinds[manifest.kind] || manifest.kind}</span>{' '}
                {manifest.channel && <span class="badge">{channelName(manifest.channel)}</span>} {manifest.description} <span class="muted">— {manifest.vendor}</span>
              </p>
              {data.items.length > 1 && <p class="muted">{t('versions', { v: data.items.map((p) => p.manifest.version).join(', ') })}</p>}
              {status.error && !notEnabled && <ErrorBox error={status.error} onRetry={status.reload} />}
              {status.loading && !status.data && !status.error && <Loading />}
              {sub && <Health status={sub} connector={connector} />}
              {(sub || notEnabled) && (
                <Card title={sub ? null : t('enableTitle')} id="plugin-tabs">
                  {sub && <Tabs tabs={tabs} active={active} onChange={setTab} label={manifest.id} />}
                  {!sub && <p class="muted">{t('notEnabledYet')}</p>}
                  <div role={sub ? 'tabpanel' : undefined} aria-label={sub ? tabs.find((x) => x.id === active).label : undefined}>
                    {active === 'configure' && <EnableForm key={manifest.id} versions={data.items.map((p) => p.manifest)} sub={sub} onDone={status.reload} />}
                    {active === 'runs' && sub && <Runs id={id} runs={sub.runs} onChange={status.reload} />}
                    {active === 'dead-letters' && sub && <DeadLetters id={id} onChange={status.reload} />}
                    {active === 'logs' && sub && <Logs id={id} />}
                  </div>
                </Card>
              )}
            </>
          );
        }}
      </Async>
    </>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  // GET /v1/plugins (the catalogue) takes an admin key or plugins:manage, as does every other
  // plugin route: a role without it can read nothing here, so it gets a plain statement.
  if (!can('plugins:manage')) {
    return (
      <>
        <div class="page-head">
          <h1>{t('title')}</h1>
        </div>
        <Card title={t('noScope')} id="plugins-no-scope">
          <p class="state empty" data-testid="plugins-no-scope">
            {t('noScopeWhy')}
          </p>
        </Card>
      </>
    );
  }
  const id = route.parts[0];
  if (id) return <Detail id={id} tab={route.query.tab} />;
  return <Catalogue />;
}

// Enabling a plugin in the shop, or changing its configuration and grant:
// `PUT /v1/shop/plugins/{id}` with `{config, grant: {capabilities, allowed_hosts}, run_every_hours}`.
// The configuration's form comes from the manifest's JSON Schema; the API's error lands on its field.
import { useState } from 'preact/hooks';
import { put } from '../../api.js';
import { useT } from '../../i18n.js';
import { currentLocale, can } from '../../session.js';
import { SaveRow } from '../loyalty/common.jsx';
import { ErrorBox } from '../../ui.jsx';
import { SchemaForm, cleanMessage, errorOn, initialValue, secretNames, shownPath } from './schema-form.jsx';
import { CAPABILITIES } from './words.js';

const strings = {
  en: {
    configuration: 'Configuration',
    noConfig: 'This plugin has nothing to configure.',
    grant: 'Capabilities to grant',
    grantHint: 'The plugin asks for these; it can do only what you tick.',
    hosts: 'Hosts it may call',
    hostsHint: 'Host names (or host:port), separated by commas, e.g. api.provider.example.',
    hostsDeclared: 'Declared by the plugin: {hosts}.',
    runEvery: 'Hours between runs over every customer',
    runEveryHint: '0 turns scheduled runs off; empty keeps the plugin’s own ({n}).',
    enable: 'Enable',
    save: 'Save changes',
    saving: 'Saving…',
    saved: 'Saved.',
    ownerOnly: 'Only the shop’s owner may change where a connector sends personal data.',
    version: 'Version',
    running: 'running',
    reset: 'Save and reset the breaker',
  },
  'zh-CN': {
    configuration: '配置',
    noConfig: '此插件无需配置。',
    grant: '授予的权限',
    grantHint: '插件申请了以下权限；它只能做您勾选的事。',
    hosts: '允许访问的主机',
    hostsHint: '主机名（或 主机:端口），用逗号分隔，例如 api.provider.example。',
    hostsDeclared: '插件声明的主机：{hosts}。',
    runEvery: '全量运行间隔（小时）',
    runEveryHint: '0 表示关闭定时运行；留空则使用插件默认值（{n}）。',
    enable: '启用',
    save: '保存修改',
    saving: '保存中…',
    saved: '已保存。',
    ownerOnly: '只有店铺所有者可以更改渠道连接器发送个人数据的去向。',
    version: '版本',
    running: '运行中',
    reset: '保存并重置熔断器',
  },
};

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** `versions`: the installed manifests, oldest first; `sub`: the shop's subscription or null; `onDone(status)` after a save. */
export default function EnableForm({ versions, sub, onDone }) {
  const t = useT(strings);
  const newest = versions[versions.length - 1].version;
  const [version, setVersion] = useState(sub && versions.some((m) => m.version === sub.version) ? sub.version : newest);
  const manifest = versions.find((m) => m.version === version) || versions[versions.length - 1];
  const schema = manifest['config-schema'] || null;
  const declared = manifest['allowed-hosts'] || [];
  const wantsHosts = declared.length > 0 && manifest.capabilities.includes('http');
  const [config, setConfig] = useState(() => initialValue(schema, sub ? sub.config : null));
  const [caps, setCaps] = useState(() => new Set(sub ? sub.grant.capabilities : manifest.capabilities));
  const [hosts, setHosts] = useState(sub ? sub.grant.allowed_hosts.join(', ') : '');
  const [hostsTouched, setHostsTouched] = useState(!!(sub && sub.grant.allowed_hosts.length));
  const [runEvery, setRunEvery] = useState(sub && manifest['run-every-hours'] !== null && sub.run_every_hours !== manifest['run-every-hours'] ? String(sub.run_every_hours) : '');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const manage = can('plugins:manage');

  // A connector's endpoint names the host to grant: suggested until the merchant types one.
  const urlValue = config && (config.url || config.endpoint);
  const suggested = !hostsTouched && !hosts && typeof urlValue === 'string' ? hostOf(urlValue) : '';
  const hostsShown = hostsTouched ? hosts : hosts || suggested;

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(false);
    const allowed = wantsHosts && caps.has('http') ? hostsShown.split(/[,，\s]+/).map((h) => h.trim()).filter(Boolean) : [];
    const body = { config: config || {}, grant: { capabilities: manifest.capabilities.filter((c) => caps.has(c)), allowed_hosts: allowed } };
    if (runEvery.trim() !== '') body.run_every_hours = Number(runEvery);
    // The version chosen, never an upgrade by surprise: the shop's requirement while it is kept.
    if (sub && version === sub.version) body.version = sub.version_req;
    else if (sub || version !== newest) body.version = `=${version}`;
    try {
      const status = await put(`/v1/shop/plugins/${encodeURIComponent(manifest.id)}`, body);
      setSaved(true);
      onDone && onDone(status);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const capsError = errorOn(error, 'grant.capabilities');
  const hostsError = error && error.field && error.field.startsWith('grant.allowed_hosts') ? cleanMessage(error) : null;
  const runError = errorOn(error, 'run_every_hours');
  const versionError = errorOn(error, 'version');
  const onAField = error && error.field && (shownPath(schema || {}, 'config', error.field) || capsError || hostsError || runError || (versions.length > 1 && versionError));
  const words = CAPABILITIES[currentLocale()] || CAPABILITIES.en;
  const enabled = sub && sub.status !== 'disabled';

  return (
    <form class="enable-form" onSubmit={submit} noValidate aria-label={enabled ? t('save') : t('enable')}>
      {error && !onAField && <ErrorBox error={error.status === 403 && manifest.kind === 'channel-connector' ? { ...error, status: 0, message: `${t('ownerOnly')} ${error.message}` } : error} />}
      {versions.length > 1 && (
        <div class={`field narrow ${versionError ? 'has-error' : ''}`}>
          <label for={`version-${manifest.id}`}>{t('version')}</label>
          <select id={`version-${manifest.id}`} value={version} onChange={(e) => setVersion(e.currentTarget.value)} aria-invalid={versionError ? 'true' : undefined}>
            {versions.map((m) => (
              <option value={m.version}>
                {m.version}
                {sub && sub.version === m.version ? ` (${t('running')})` : ''}
              </option>
            ))}
          </select>
          {versionError && (
            <div class="field-error" role="alert">
              {versionError}
            </div>
          )}
        </div>
      )}
      <h3>{t('configuration')}</h3>
      {schema && schema.properties && Object.keys(schema.properties).length ? (
        <SchemaForm schema={schema} value={config} onChange={setConfig} error={error} secretsStored={sub ? secretNames(schema) : []} />
      ) : (
        <p class="muted">{t('noConfig')}</p>
      )}
      <fieldset class={`field caps ${capsError ? 'has-error' : ''}`} data-path="grant.capabilities">
        <legend>{t('grant')}</legend>
        <div class="hint">{t('grantHint')}</div>
        {manifest.capabilities.map((cap) => (
          <label class="cap">
            <input
              type="checkbox"
              name="capability"
              value={cap}
              checked={caps.has(cap)}
              onChange={(e) => {
                const next = new Set(caps);
                if (e.currentTarget.checked) next.add(cap);
                else next.delete(cap);
                setCaps(next);
              }}
            />
            <span>
              <code>{cap}</code> — {words[cap] || CAPABILITIES.en[cap] || cap}
            </span>
          </label>
        ))}
        {capsError && (
          <div class="field-error" role="alert">
            {capsError}
          </div>
        )}
      </fieldset>
      {wantsHosts && caps.has('http') && (
        <div class={`field ${hostsError ? 'has-error' : ''}`}>
          <label for={`hosts-${manifest.id}`}>{t('hosts')}</label>
          <input
            id={`hosts-${manifest.id}`}
            name="grant.allowed_hosts"
            data-path="grant.allowed_hosts"
            value={hostsShown}
            aria-invalid={hostsError ? 'true' : undefined}
            aria-describedby={`hosts-${manifest.id}-note`}
            onInput={(e) => {
              setHostsTouched(true);
              setHosts(e.currentTarget.value);
            }}
          />
          {hostsError ? (
            <div class="field-error" id={`hosts-${manifest.id}-note`} role="alert">
              {hostsError}
            </div>
          ) : (
            <div class="hint" id={`hosts-${manifest.id}-note`}>
              {t('hostsHint')} {declared.includes('*') ? '' : t('hostsDeclared', { hosts: declared.join(', ') })}
            </div>
          )}
        </div>
      )}
      {manifest['run-every-hours'] !== null && manifest['run-every-hours'] !== undefined && (
        <div class={`field narrow ${runError ? 'has-error' : ''}`}>
          <label for={`run-every-${manifest.id}`}>{t('runEvery')}</label>
          <input
            id={`run-every-${manifest.id}`}
            inputMode="numeric"
            value={runEvery}
            placeholder={String(manifest['run-every-hours'])}
            aria-invalid={runError ? 'true' : undefined}
            aria-describedby={`run-every-${manifest.id}-note`}
            onInput={(e) => setRunEvery(e.currentTarget.value)}
          />
          <div class={runError ? 'field-error' : 'hint'} id={`run-every-${manifest.id}-note`} role={runError ? 'alert' : undefined}>
            {runError || t('runEveryHint', { n: manifest['run-every-hours'] })}
          </div>
        </div>
      )}
      <SaveRow disabled={busy || !manage} label={busy ? t('saving') : sub && sub.status === 'tripped' ? t('reset') : enabled ? t('save') : t('enable')} saved={saved} savedLabel={t('saved')} />
    </form>
  );
}

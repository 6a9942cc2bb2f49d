// Settings: the shop; sub-accounts (console users: invite, remove); API keys with roles and
// scopes (the token shown once); the audit log; the export policy; CSV import. Sub-accounts,
// keys, the audit log and the export policy are the owner's.
import { useEffect, useState } from 'preact/hooks';
import { del, get, post, put } from '../api.js';
import { dateTime } from '../format.js';
import { useT } from '../i18n.js';
import { navigate } from '../router.js';
import { useSession } from '../session.js';
import { Async, Card, Dialog, ErrorBox, Field, Loading, Table, Tabs, useApi } from '../ui.jsx';
import { fieldMessage } from './overview/util.js';
import { strings } from './settings/strings.js';
import Import from './settings/import.jsx';
import './settings/settings.css';

const TABS = ['shop', 'users', 'keys', 'audit', 'export', 'import'];
const TAB_LABEL = { shop: 'tabShop', users: 'tabUsers', keys: 'tabKeys', audit: 'tabAudit', export: 'tabExport', import: 'tabImport' };
const ROLES = ['owner', 'operator', 'analyst'];
const KEY_ROLES = ['owner', 'operator', 'analyst', 'app'];
const SCOPES = ['customers:read', 'customers:write', 'events:read', 'events:write', 'tags:write', 'plugins:manage', 'segments:manage', 'segments:export', 'pii:read', 'loyalty:manage', 'loyalty:redeem', 'coupons:manage', 'messages:send', 'messages:manage', 'journeys:manage'];

function errorOn(error, field) {
  return error && error.field === field ? fieldMessage(error) : null;
}

const USER_TONE = { active: 'good', locked: 'bad', invited: 'warn' };

/** `user:3` → the user's login (when known), `cli:setup` → the command line, else a key's id. */
function createdBy(value, logins, t) {
  if (!value) return '—';
  const u = /^user:(\d+)$/.exec(value);
  if (u) return logins[u[1]] ? t('byUser', { login: logins[u[1]] }) : t('byUserId', { id: u[1] });
  if (value.startsWith('cli:')) return t('byCli', { label: value.slice(4) });
  return <span class="mono">{t('byKey', { id: value })}</span>;
}

function Copy({ text, t }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
    } catch {
      setDone(false);
    }
  };
  return (
    <button type="button" onClick={copy}>
      {done ? t('copied') : t('copy')}
    </button>
  );
}

function Shop({ t }) {
  const state = useApi('/v1/shop');
  return (
    <Card title={t('shop')} id="shop">
      <Async state={state} isEmpty={() => false}>
        {(s) => (
          <dl class="facts">
            <dt>{t('name')}</dt>
            <dd data-testid="settings-shop-name">{s.name}</dd>
            <dt>{t('shopId')}</dt>
            <dd>{s.id}</dd>
            <dt>{t('timeZone')}</dt>
            <dd>{s.time_zone}</dd>
            <dt>{t('currency')}</dt>
            <dd>{s.currency}</dd>
            <dt>{t('region')}</dt>
            <dd>{s.region}</dd>
            <dt>{t('created')}</dt>
            <dd>{dateTime(s.created_at)}</dd>
          </dl>
        )}
      </Async>
    </Card>
  );
}

function Users({ t }) {
  const state = useApi('/v1/console/users');
  const [login, setLogin] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('operator');
  const [error, setError] = useState(null);
  const [invite, setInvite] = useState(null);
  const [removing, setRemoving] = useState(null);
  const [removeError, setRemoveError] = useState(null);
  const [unlocked, setUnlocked] = useState(null);
  const [unlockError, setUnlockError] = useState(null);
  const items = state.data ? (Array.isArray(state.data) ? state.data : state.data.items || []) : [];
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setInvite(null);
    try {
      const res = await post('/v1/console/users', { login: login.trim(), name: name.trim() || undefined, role });
      setInvite(res);
      setLogin('');
      setName('');
      state.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    setRemoveError(null);
    try {
      await del(`/v1/console/users/${removing.id}`);
      setRemoving(null);
      state.reload();
    } catch (err) {
      setRemoveError(err);
    }
  };
  const unlock = async (u) => {
    setUnlocked(null);
    setUnlockError(null);
    try {
      await post(`/v1/console/users/${u.id}/unlock`);
      setUnlocked(u.login);
      state.reload();
    } catch (err) {
      // A kernel from before the unlock (no such route): the lock still ends by itself. A 404
      // about the user (removed meanwhile) is shown as it is.
      const noRoute = err.status === 405 || (err.status === 404 && !(err.problem && err.problem.detail && /user/i.test(err.problem.detail)));
      setUnlockError(noRoute ? t('unlockUnavailable') : err);
      if (!noRoute) state.reload();
    }
  };
  const link = invite ? new URL(invite.invite_url, location.origin).href : '';
  return (
    <>
      <Card title={t('users')} id="users">
        {unlocked && (
          <p class="badge good" role="status">
            {t('unlocked', { login: unlocked })}
          </p>
        )}
        {unlockError && (typeof unlockError === 'string' ? <p class="hint" role="status">{unlockError}</p> : <ErrorBox error={unlockError} />)}
        <Async state={state} isEmpty={() => items.length === 0} empty={t('noUsers')}>
          {() => (
            <Table
              rowKey={(u) => u.id}
              columns={[
                { key: 'login', label: t('login'), render: (u) => <span class="mono">{u.login}</span> },
                { key: 'name', label: t('name'), render: (u) => u.name || '—' },
                { key: 'role', label: t('role'), render: (u) => t(u.role) },
                { key: 'status', label: t('status'), render: (u) => <span class={`badge ${USER_TONE[u.status] || ''}`}>{t(`user_${u.status}`)}</span> },
                { key: 'created', label: t('created'), render: (u) => dateTime(u.created_at) },
                { key: 'last', label: t('lastSignIn'), render: (u) => dateTime(u.last_sign_in_at) },
                {
                  key: 'remove',
                  label: <span class="sr-only">{t('userActions')}</span>,
                  render: (u) => (
                    <span class="actions">
                      {u.status === 'locked' && (
                        <button type="button" aria-label={t('unlockUser', { login: u.login })} onClick={() => unlock(u)}>
                          {t('unlock')}
                        </button>
                      )}
                      {u.role !== 'owner' && (
                        <button type="button" class="danger" aria-label={`${t('remove')} ${u.login}`} onClick={() => { setRemoveError(null); setRemoving(u); }}>
                          {t('remove')}
                        </button>
                      )}
                    </span>
                  ),
                },
              ]}
              rows={items}
            />
          )}
        </Async>
      </Card>
      {!state.error && (
        <Card title={t('invite')} id="invite">
          <form class="toolbar" onSubmit={submit}>
            <Field label={t('login')} error={errorOn(error, 'login')}>
              {(p) => <input {...p} name="login" value={login} required autoComplete="off" onInput={(e) => setLogin(e.currentTarget.value)} />}
            </Field>
            <Field label={t('name')} error={errorOn(error, 'name')}>
              {(p) => <input {...p} name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />}
            </Field>
            <Field label={t('role')} error={errorOn(error, 'role')}>
              {(p) => (
                <select {...p} name="role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
                  {ROLES.map((r) => (
                    <option value={r}>{t(r)}</option>
                  ))}
                </select>
              )}
            </Field>
            <button type="submit" class="primary">
              {t('inviteButton')}
            </button>
          </form>
          {error && !['login', 'name', 'role'].includes(error.field) && <ErrorBox error={error} />}
          {invite && (
            <div class="secret" role="status">
              <p>{t('invited', { login: invite.user ? invite.user.login : '', until: dateTime(invite.invite_expires_at) })}</p>
              <div class="secret-row">
                <input readOnly value={link} aria-label={t('inviteLink')} data-testid="invite-link" class="mono" onFocus={(e) => e.currentTarget.select()} />
                <Copy text={link} t={t} />
              </div>
            </div>
          )}
        </Card>
      )}
      <Confirm
        t={t}
        open={!!removing}
        title={removing ? t('removeUser', { login: removing.login }) : ''}
        text={removing ? t('removeUserText', { login: removing.login }) : ''}
        error={removeError}
        action={t('remove')}
        onConfirm={remove}
        onClose={() => setRemoving(null)}
      />
    </>
  );
}

/** A confirmation of a destructive action: what it does, the API's refusal if any, the action or cancel. */
function Confirm({ t, open, title, text, error, action, onConfirm, onClose }) {
  return (
    <Dialog open={open} title={title} onClose={onClose}>
      {open && (
        <>
          <p>{text}</p>
          {error && <ErrorBox error={error} />}
          <div class="actions">
            <button type="button" class="danger" onClick={onConfirm}>
              {action}
            </button>
            <button type="button" onClick={onClose}>
              {t('cancel')}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}

function Keys({ t }) {
  const state = useApi('/v1/keys');
  // Who created each key, when the kernel says (`created_by`): users by their login.
  const withCreator = !!(state.data && state.data.items.some((k) => 'created_by' in k));
  const users = useApi(withCreator ? '/v1/console/users' : null);
  const logins = {};
  for (const u of users.data ? (Array.isArray(users.data) ? users.data : users.data.items || []) : []) logins[u.id] = u.login;
  const [name, setName] = useState('');
  const [role, setRole] = useState('analyst');
  const [custom, setCustom] = useState(false);
  const [scopes, setScopes] = useState([]);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [revokeError, setRevokeError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const res = await post('/v1/keys', { name: name.trim(), role, scopes: custom ? scopes : undefined });
      setCreated(res);
      setName('');
      state.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async () => {
    setRevokeError(null);
    try {
      await del(`/v1/keys/${encodeURIComponent(revoking.id)}`);
      setRevoking(null);
      state.reload();
    } catch (err) {
      setRevokeError(err);
    }
  };
  const toggle = (s) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <>
      <Card title={t('keys')} id="keys">
        <Async state={state} isEmpty={(d) => d.items.length === 0} empty={t('noKeys')}>
          {(d) => (
            <Table
              rowKey={(k) => k.id}
              columns={[
                { key: 'name', label: t('name') },
                { key: 'id', label: t('keyId'), render: (k) => <span class="mono">{k.id}</span> },
                { key: 'role', label: t('role'), render: (k) => t(k.role) },
                { key: 'scopes', label: t('scopes'), render: (k) => <span class="scopes">{k.scopes.map((s) => <span class="badge">{s}</span>)}</span> },
                { key: 'created', label: t('created'), render: (k) => dateTime(k.created_at) },
                ...(withCreator ? [{ key: 'created_by', label: t('createdBy'), render: (k) => createdBy(k.created_by, logins, t) }] : []),
                { key: 'status', label: t('status'), render: (k) => (k.revoked_at ? <span class="badge bad">{`${t('revoked')} ${dateTime(k.revoked_at)}`}</span> : <span class="badge good">{t('active')}</span>) },
                {
                  key: 'revoke',
                  label: <span class="sr-only">{t('revoke')}</span>,
                  render: (k) =>
                    k.revoked_at ? null : (
                      <button type="button" class="danger" aria-label={`${t('revoke')} ${k.name}`} onClick={() => { setRevokeError(null); setRevoking(k); }}>
                        {t('revoke')}
                      </button>
                    ),
                },
              ]}
              rows={d.items}
            />
          )}
        </Async>
      </Card>
      <Card title={t('newKey')} id="new-key">
        <form onSubmit={submit}>
          <div class="toolbar">
            <Field label={t('name')} error={errorOn(error, 'name')}>
              {(p) => <input {...p} name="key-name" value={name} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />}
            </Field>
            <Field label={t('role')} error={errorOn(error, 'role')}>
              {(p) => (
                <select {...p} name="key-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
                  {KEY_ROLES.map((r) => (
                    <option value={r}>{t(r)}</option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          <fieldset class="scopes-choice">
            <legend>{t('scopes')}</legend>
            <label>
              <input type="radio" name="scope-mode" checked={!custom} onChange={() => setCustom(false)} /> {t('roleScopes')}
            </label>
            <label>
              <input type="radio" name="scope-mode" checked={custom} onChange={() => setCustom(true)} /> {t('chooseScopes')}
            </label>
            {custom && (
              <div class="scope-grid">
                {SCOPES.map((s) => (
                  <label>
                    <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> <span class="mono">{s}</span>
                  </label>
                ))}
              </div>
            )}
            {errorOn(error, 'scopes') && (
              <div class="field-error" role="alert">
                {errorOn(error, 'scopes')}
              </div>
            )}
          </fieldset>
          <button type="submit" class="primary">
            {t('create')}
          </button>
          {error && !['name', 'role', 'scopes'].includes(error.field) && <ErrorBox error={error} />}
        </form>
        {created && (
          <div class="secret" role="status" data-testid="new-token">
            <p>{t('token')}</p>
            <div class="secret-row">
              <input readOnly value={created.token} aria-label={t('tokenLabel')} class="mono" onFocus={(e) => e.currentTarget.select()} />
              <Copy text={created.token} t={t} />
              <button type="button" onClick={() => setCreated(null)}>
                {t('done')}
              </button>
            </div>
          </div>
        )}
      </Card>
      <Confirm
        t={t}
        open={!!revoking}
        title={revoking ? t('revokeKey', { name: revoking.name }) : ''}
        text={revoking ? t('revokeKeyText', { id: revoking.id }) : ''}
        error={revokeError}
        action={t('revoke')}
        onConfirm={revoke}
        onClose={() => setRevoking(null)}
      />
    </>
  );
}

function Audit({ t }) {
  const [pages, setPages] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [action, setAction] = useState('');
  const [actor, setActor] = useState('');
  const load = (before) => {
    setLoading(true);
    setError(null);
    get('/v1/audit', { before, limit: 100 }).then(
      (d) => {
        setPages((p) => ({ items: before && p ? [...p.items, ...d.items] : d.items, next: d.next_before ?? null }));
        setLoading(false);
      },
      (err) => {
        setError(err);
        setLoading(false);
      },
    );
  };
  useEffect(() => load(), []);
  const items = pages ? pages.items : [];
  const shown = items.filter((e) => (!action || e.action.includes(action.trim())) && (!actor || (e.key_id || '').includes(actor.trim()) || JSON.stringify(e.detail || {}).includes(actor.trim())));
  return (
    <Card title={t('audit')} id="audit" actions={
        <button type="button" aria-label={t('refresh')} title={t('refresh')} onClick={() => load()}>
          ↻
        </button>
      }
    >
      <div class="toolbar">
        <Field label={t('filterAction')}>{(p) => <input {...p} name="audit-action" value={action} placeholder="key.created" onInput={(e) => setAction(e.currentTarget.value)} />}</Field>
        <Field label={t('filterActor')}>{(p) => <input {...p} name="audit-actor" value={actor} onInput={(e) => setActor(e.currentTarget.value)} />}</Field>
      </div>
      <p class="hint">{t('filterHint')}</p>
      {error && <ErrorBox error={error} onRetry={() => load()} />}
      {!pages && !error && <Loading />}
      {pages && (
        <>
          <p class="muted">{t('shown', { n: shown.length, m: items.length })}</p>
          {shown.length ? (
            <Table
              rowKey={(e) => e.id}
              columns={[
                { key: 'when', label: t('when'), render: (e) => dateTime(e.created_at) },
                { key: 'actor', label: t('actor'), render: (e) => <span class="mono">{e.key_id || '—'}</span> },
                { key: 'action', label: t('action'), render: (e) => <span class="badge">{e.action}</span> },
                { key: 'target', label: t('target'), render: (e) => <span class="mono">{e.target || '—'}</span> },
                { key: 'detail', label: t('detail'), render: (e) => <code class="detail">{JSON.stringify(e.detail)}</code> },
              ]}
              rows={shown}
            />
          ) : (
            <p class="state empty">{t('noAudit')}</p>
          )}
          {pages.next && (
            <button type="button" disabled={loading} onClick={() => load(pages.next)}>
              {t('more')}
            </button>
          )}
        </>
      )}
    </Card>
  );
}

function ExportPolicy({ t }) {
  const state = useApi('/v1/shop/settings/export');
  const [value, setValue] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const current = value === null ? state.data && state.data.personal_columns : value;
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await put('/v1/shop/settings/export', { personal_columns: !!current });
      setSaved(true);
      state.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title={t('exportPolicy')} id="export">
      <Async state={state} isEmpty={() => false}>
        {() => (
          <form onSubmit={save}>
            <label class="check">
              <input type="checkbox" name="personal_columns" checked={!!current} onChange={(e) => setValue(e.currentTarget.checked)} /> {t('personal')}
            </label>
            {error && <ErrorBox error={error} />}
            <div class="actions">
              <button type="submit" class="primary">
                {t('save')}
              </button>
              {saved && <span role="status">{t('saved')}</span>}
            </div>
          </form>
        )}
      </Async>
    </Card>
  );
}

export default function Screen({ route }) {
  const t = useT(strings);
  const { me } = useSession();
  const owner = !!me && (me.role === 'owner' || me.role === 'admin');
  const query = route.query || {};
  const tab = TABS.includes(query.tab) ? query.tab : 'shop';
  const ownerTabs = ['users', 'keys', 'audit', 'export'];
  return (
    <div class="settings">
      <div class="page-head">
        <h1>{t('title')}</h1>
      </div>
      <Tabs label={t('sections')} active={tab} onChange={(next) => navigate('/settings', { tab: next === 'shop' ? undefined : next })} tabs={TABS.map((k) => ({ id: k, label: t(TAB_LABEL[k]) }))} />
      <div role="tabpanel" aria-label={t(TAB_LABEL[tab])}>
        {ownerTabs.includes(tab) && !owner ? (
          <p class="hint">{t('ownerOnly')}</p>
        ) : (
          <>
            {tab === 'shop' && <Shop t={t} />}
            {tab === 'users' && <Users t={t} />}
            {tab === 'keys' && <Keys t={t} />}
            {tab === 'audit' && <Audit t={t} />}
            {tab === 'export' && <ExportPolicy t={t} />}
            {tab === 'import' && <Import t={t} />}
          </>
        )}
      </div>
    </div>
  );
}

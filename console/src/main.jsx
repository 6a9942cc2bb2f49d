// The console's shell: sign-in, the navigation, the shop and the user, the language switch,
// and the screens, each loaded when first opened (the first screen stays small).
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, onSignedOut, post } from './api.js';
import { useT } from './i18n.js';
import { navigate, parseHash, useRoute } from './router.js';
import { LOCALES, can, loadSession, setLocale, setSession, useSession, currentLocale } from './session.js';
import { Dialog, ErrorBox, Field, Loading } from './ui.jsx';
import Overview from './screens/overview.jsx';
import './style.css';

const strings = {
  en: {
    brand: 'Kith',
    overview: 'Overview',
    customers: 'Customers',
    segments: 'Segments',
    journeys: 'Journeys',
    loyalty: 'Loyalty & coupons',
    messages: 'Messages',
    plugins: 'Plugins',
    settings: 'Settings',
    signIn: 'Sign in',
    signOut: 'Sign out',
    login: 'Account',
    password: 'Password',
    newPassword: 'Choose a password (at least 10 characters)',
    accept: 'Accept the invitation',
    invited: 'You were invited to the console. Choose your password to sign in.',
    language: 'Language',
    nav: 'Main',
    skip: 'Skip to content',
    signInTitle: 'Sign in to the console',
    notFound: 'There is no such page.',
    role: 'Role',
    wrongPassword: 'The account or the password is wrong.',
    sessionEnded: 'Your session has ended. Sign in again.',
    inviteInvalid: 'This invitation is not valid: it was used, has expired or was withdrawn. Ask the shop\u2019s owner for a new one.',
    toSignIn: 'Go to sign-in',
    changePassword: 'Change password',
    currentPassword: 'Current password',
    passwordChanged: 'Your password was changed; your other sessions were signed out.',
    save: 'Save',
    owner: 'owner',
    operator: 'operator',
    analyst: 'analyst',
    app: 'app',
  },
  'zh-CN': {
    brand: 'Kith',
    overview: '概览',
    customers: '客户',
    segments: '人群圈选',
    journeys: '自动化营销',
    loyalty: '会员与优惠券',
    messages: '消息',
    plugins: '插件市场',
    settings: '设置',
    signIn: '登录',
    signOut: '退出登录',
    login: '账号',
    password: '密码',
    newPassword: '设置密码（至少 10 个字符）',
    accept: '接受邀请',
    invited: '您受邀使用控制台。请设置密码后登录。',
    language: '语言',
    nav: '主导航',
    skip: '跳到正文',
    signInTitle: '登录控制台',
    notFound: '页面不存在。',
    role: '角色',
    wrongPassword: '账号或密码错误。',
    sessionEnded: '登录已失效，请重新登录。',
    inviteInvalid: '此邀请无效：已被使用、已过期或已撤回。请联系店铺主账号重新邀请。',
    toSignIn: '前往登录',
    changePassword: '修改密码',
    currentPassword: '当前密码',
    passwordChanged: '密码已修改，您的其他登录已退出。',
    save: '保存',
    owner: '主账号',
    operator: '运营',
    analyst: '分析师',
    app: '应用',
  },
};

const SCREENS = {
  overview: { load: null },
  customers: { load: () => import('./screens/customers.jsx') },
  segments: { load: () => import('./screens/segments.jsx') },
  journeys: { load: () => import('./screens/journeys.jsx') },
  loyalty: { load: () => import('./screens/loyalty.jsx') },
  messages: { load: () => import('./screens/messages.jsx') },
  plugins: { load: () => import('./screens/plugins.jsx') },
  settings: { load: () => import('./screens/settings.jsx') },
};

const LANGUAGE_NAMES = { 'zh-CN': '中文', en: 'English' };

function Lazy({ name, route }) {
  const [mod, setMod] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setMod(null);
    setError(null);
    SCREENS[name].load().then(setMod, setError);
  }, [name]);
  if (error) return <ErrorBox error={error} />;
  if (!mod) return <Loading />;
  const Screen = mod.default;
  return <Screen route={route} />;
}

function LanguageSwitch() {
  const t = useT(strings);
  return (
    <label class="lang">
      <span class="sr-only">{t('language')}</span>
      <select value={currentLocale()} onChange={(e) => setLocale(e.currentTarget.value)} aria-label={t('language')}>
        {LOCALES.map((l) => (
          <option value={l}>{LANGUAGE_NAMES[l]}</option>
        ))}
      </select>
    </label>
  );
}

function SignIn({ onDone, ended }) {
  const t = useT(strings);
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await post('/v1/console/sign-in', { login, password });
      setSession(me);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in" id="main">
      <form class="card" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">{t('signInTitle')}</h1>
        {ended && !error && (
          <p class="state notice" role="status">
            {t('sessionEnded')}
          </p>
        )}
        <Field label={t('login')}>
          {(p) => <input {...p} name="login" autoComplete="username" value={login} onInput={(e) => setLogin(e.currentTarget.value)} required />}
        </Field>
        <Field label={t('password')}>
          {(p) => <input {...p} name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />}
        </Field>
        {error &&
          (error instanceof ApiError && error.status === 401 ? (
            <div class="state error" role="alert" data-testid="sign-in-error">
              {t('wrongPassword')}
            </div>
          ) : (
            <div data-testid="sign-in-error">
              <ErrorBox error={error} />
            </div>
          ))}
        <button type="submit" class="primary" disabled={busy}>
          {t('signIn')}
        </button>
        <LanguageSwitch />
      </form>
    </main>
  );
}

function AcceptInvite({ token, onDone }) {
  const t = useT(strings);
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const me = await post('/v1/console/invites/accept', { token, password });
      setSession(me);
      navigate('/');
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const badToken = error && error.field === 'token';
  return (
    <main class="sign-in" id="main">
      <form class="card" onSubmit={submit} aria-labelledby="invite-title">
        <h1 id="invite-title">{t('accept')}</h1>
        <p>{t('invited')}</p>
        <Field label={t('newPassword')} error={error && error.field === 'password' ? error.message : null}>
          {(p) => <input {...p} name="password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required minLength={10} />}
        </Field>
        {badToken && (
          <div class="state error" role="alert">
            {t('inviteInvalid')}{' '}
            <a href="#/" onClick={() => onDone()}>
              {t('toSignIn')}
            </a>
          </div>
        )}
        {error && !badToken && error.field !== 'password' && <ErrorBox error={error} />}
        <button type="submit" class="primary" disabled={busy}>
          {t('accept')}
        </button>
      </form>
    </main>
  );
}

/** The signed-in user's own password: the current one, then a new one. */
function PasswordDialog({ open, onClose }) {
  const t = useT(strings);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (open) {
      setCurrent('');
      setNext('');
      setError(null);
      setDone(false);
    }
  }, [open]);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await post('/v1/console/password', { current_password: current, new_password: next });
      // A kernel that rotates the session on a change answers the new one (its new CSRF token).
      if (answer && answer.csrf_token) setSession(answer);
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const on = (field) => (error && error.field === field ? error.message : null);
  return (
    <Dialog open={open} title={t('changePassword')} onClose={onClose}>
      {done ? (
        <p role="status">{t('passwordChanged')}</p>
      ) : (
        <form onSubmit={submit}>
          <Field label={t('currentPassword')} error={on('current_password')}>
            {(p) => <input {...p} type="password" autoComplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} required />}
          </Field>
          <Field label={t('newPassword')} error={on('new_password')}>
            {(p) => <input {...p} type="password" autoComplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} required minLength={10} />}
          </Field>
          {error && !error.field && <ErrorBox error={error} />}
          <button type="submit" class="primary" disabled={busy}>
            {t('save')}
          </button>
        </form>
      )}
    </Dialog>
  );
}

function Shell({ route }) {
  const t = useT(strings);
  const { me, shop } = useSession();
  const name = route.parts[0] || 'overview';
  const screen = SCREENS[name];
  const sub = { ...route, parts: route.parts.slice(1) };
  const [signOutError, setSignOutError] = useState(null);
  const [passwordOpen, setPasswordOpen] = useState(false);
  // On a move to another page, focus goes to the page's content (the link clicked may be gone),
  // so that keyboard and screen-reader users start there; the title says where they are.
  const firstRoute = useRef(true);
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    document.getElementById('main')?.focus();
  }, [route.path]);
  const signOut = async () => {
    setSignOutError(null);
    try {
      await post('/v1/console/sign-out');
    } catch (err) {
      // Still signed in on the kernel: say so rather than show a sign-in form over a live session.
      // (A session already gone answers 401, which is as good as signed out.)
      if (!(err instanceof ApiError) || err.status !== 401) {
        setSignOutError(err);
        return;
      }
    }
    setSession(null);
  };
  useEffect(() => {
    const title = screen ? t(name) : t('notFound');
    document.title = `${title} · ${shop ? shop.name : 'Kith'}`;
  }, [name, shop, currentLocale()]);
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        {t('skip')}
      </a>
      <header class="top">
        <span class="brand">{t('brand')}</span>
        <span class="shop-name" data-testid="shop-name">{shop && shop.name}</span>
        <span class="spacer" />
        <LanguageSwitch />
        {me && me.user && (
          <span class="who" data-testid="who">
            {me.user.name || me.user.login} · {t(me.role)}
          </span>
        )}
        {me && me.user && (
          <button type="button" class="link" onClick={() => setPasswordOpen(true)}>
            {t('changePassword')}
          </button>
        )}
        {me && me.user && (
          <button type="button" class="link" onClick={signOut}>
            {t('signOut')}
          </button>
        )}
      </header>
      <nav class="side" aria-label={t('nav')}>
        <ul>
          {Object.keys(SCREENS).map((key) => (
            <li>
              <a href={`#/${key === 'overview' ? '' : key}`} aria-current={key === name ? 'page' : undefined}>
                {t(key)}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1} class="content">
        {signOutError && <ErrorBox error={signOutError} onRetry={signOut} />}
        {!screen ? <p>{t('notFound')}</p> : name === 'overview' ? <Overview route={sub} /> : <Lazy name={name} route={sub} />}
      </main>
      <PasswordDialog open={passwordOpen} onClose={() => setPasswordOpen(false)} />
    </div>
  );
}

/** An invitation's token, taken out of the address bar (and so out of the history) on arrival. */
function takeInviteToken() {
  const { parts, query } = parseHash();
  if (parts[0] !== 'invite' || !query.token) return null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return query.token;
}

function App() {
  const route = useRoute();
  const [inviteToken, setInviteToken] = useState(takeInviteToken);
  useEffect(() => {
    // An invitation opened in a console already loaded (only the hash changed).
    // (At mount the token was taken already and the route still shows it: keep what was taken.)
    const token = route.parts[0] === 'invite' && route.query.token ? takeInviteToken() : null;
    if (token) setInviteToken(token);
  }, [route.path, route.query.token]);
  const { me } = useSession();
  const [phase, setPhase] = useState('loading');
  const [error, setError] = useState(null);
  // The session ended under the user (expired, removed, signed out elsewhere): said on the sign-in page.
  const [ended, setEnded] = useState(false);
  const boot = () => {
    setPhase('loading');
    loadSession().then(
      () => setPhase('ready'),
      (err) => {
        if (err instanceof ApiError && err.status === 401) setPhase('signed-out');
        else {
          setError(err);
          setPhase('error');
        }
      },
    );
  };
  useEffect(() => {
    boot();
    return onSignedOut(() => {
      setEnded(true);
      setSession(null);
    });
  }, []);
  useEffect(() => {
    document.documentElement.lang = currentLocale();
  });
  if (inviteToken) return <AcceptInvite token={inviteToken} onDone={() => { setInviteToken(null); boot(); }} />;
  if (phase === 'loading') return <Loading />;
  if (phase === 'error') return <ErrorBox error={error} onRetry={boot} />;
  if (!me)
    return (
      <SignIn
        ended={ended}
        onDone={() => {
          setEnded(false);
          boot();
        }}
      />
    );
  return <Shell route={route} />;
}

export { can };
render(<App />, document.getElementById('app'));

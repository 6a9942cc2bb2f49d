// Who is signed in, in which shop, and the language the console speaks: one small store the
// screens read (and re-render on) through the hooks below.
import { useEffect, useState } from 'preact/hooks';
import { get, setCsrf } from './api.js';

const LOCALE_KEY = 'kith.locale';
export const LOCALES = ['zh-CN', 'en'];

const DEV_SCOPES = ['customers:read', 'customers:write', 'events:read', 'events:write', 'tags:write', 'plugins:manage', 'segments:manage', 'segments:export', 'pii:read', 'loyalty:manage', 'loyalty:redeem', 'coupons:manage', 'messages:send', 'messages:manage', 'journeys:manage'];

let state = { me: null, shop: null, locale: null };
const listeners = new Set();

function emit() {
  listeners.forEach((fn) => fn(state));
}

/**
 * `GET /v1/console/session`: `{user, role, scopes, shop, csrf_token}` for a session (or, in
 * development, the key the Vite proxy signs with), then the shop.
 */
export async function loadSession() {
  let me;
  try {
    me = await get('/v1/console/session');
  } catch (err) {
    // Development against a kernel without console sessions: the Vite proxy's key stands in.
    if (!(import.meta.env.DEV && err.status === 404)) throw err;
    me = { user: null, role: 'owner', scopes: DEV_SCOPES, shop: null, csrf_token: null };
  }
  setCsrf(me.csrf_token);
  const shop = me.shop || (await get('/v1/shop'));
  state = { ...state, me, shop };
  emit();
  return state;
}

export function setSession(me) {
  setCsrf(me && me.csrf_token);
  state = { ...state, me, shop: me ? me.shop || state.shop : null };
  emit();
}

export function currentShop() {
  return state.shop;
}

/** The locale: the user's choice, else the shop's (zh-CN for a shop in CN), else the browser's. */
export function currentLocale() {
  if (state.locale) return state.locale;
  const saved = typeof localStorage !== 'undefined' && localStorage.getItem(LOCALE_KEY);
  if (saved && LOCALES.includes(saved)) return saved;
  if (state.shop) return state.shop.region === 'CN' || state.shop.region === 'TW' || state.shop.region === 'HK' ? 'zh-CN' : 'en';
  return typeof navigator !== 'undefined' && navigator.language && navigator.language.startsWith('zh') ? 'zh-CN' : 'en';
}

export function setLocale(locale) {
  localStorage.setItem(LOCALE_KEY, locale);
  state = { ...state, locale };
  document.documentElement.lang = locale;
  emit();
}

/** Does the signed-in user (or key) hold `scope`? */
export function can(scope) {
  return !!state.me && Array.isArray(state.me.scopes) && state.me.scopes.includes(scope);
}

export function useSession() {
  const [s, set] = useState(state);
  useEffect(() => {
    listeners.add(set);
    set(state);
    return () => listeners.delete(set);
  }, []);
  return s;
}

// Money in the shop's currency (amounts arrive in minor units), times in the shop's zone.
import { currentLocale, currentShop } from './session.js';

const cache = new Map();
function fmt(kind, key, make) {
  const k = `${kind}|${key}`;
  let f = cache.get(k);
  if (!f) {
    f = make();
    cache.set(k, f);
  }
  return f;
}

function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** `12990` fen → `¥129.90` (in the shop's currency unless another is given). */
export function money(minor, currency) {
  if (minor === null || minor === undefined || Number.isNaN(Number(minor))) return '—';
  const cur = currency || currentShop()?.currency || 'CNY';
  const digits = minorDigits(cur);
  const f = fmt('money', `${currentLocale()}|${cur}`, () => new Intl.NumberFormat(currentLocale(), { style: 'currency', currency: cur }));
  return f.format(Number(minor) / 10 ** digits);
}

/** Minor units to a decimal string for an input (`12990` → `129.90`). */
export function toMajor(minor, currency) {
  const digits = minorDigits(currency || currentShop()?.currency || 'CNY');
  return (Number(minor) / 10 ** digits).toFixed(digits);
}

/** A decimal string from an input to minor units (`129.9` → `12990`); NaN when not a number. */
export function toMinor(text, currency) {
  const digits = minorDigits(currency || currentShop()?.currency || 'CNY');
  const n = Number(String(text).trim());
  return Number.isFinite(n) ? Math.round(n * 10 ** digits) : NaN;
}

export function number(n, digits) {
  if (n === null || n === undefined) return '—';
  const f = fmt('num', `${currentLocale()}|${digits}`, () => new Intl.NumberFormat(currentLocale(), { maximumFractionDigits: digits ?? 2 }));
  return f.format(n);
}

/** A ratio (0.123) as a percentage (12.3 %). */
export function percent(ratio, digits = 1) {
  if (ratio === null || ratio === undefined || Number.isNaN(Number(ratio))) return '—';
  const f = fmt('pct', `${currentLocale()}|${digits}`, () =>
    new Intl.NumberFormat(currentLocale(), { style: 'percent', maximumFractionDigits: digits, minimumFractionDigits: 0 }),
  );
  return f.format(ratio);
}

function zone() {
  return currentShop()?.time_zone || 'UTC';
}

/** A timestamp in the shop's zone, e.g. `2026/12/7 15:14`. */
export function dateTime(iso) {
  if (!iso) return '—';
  const f = fmt('dt', `${currentLocale()}|${zone()}`, () =>
    new Intl.DateTimeFormat(currentLocale(), { timeZone: zone(), year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }),
  );
  return f.format(new Date(iso));
}

/** A date (a timestamp in the shop's zone, or a plain `YYYY-MM-DD`). */
export function date(value) {
  if (!value) return '—';
  const plain = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const f = fmt('d', `${currentLocale()}|${plain ? 'UTC' : zone()}`, () =>
    new Intl.DateTimeFormat(currentLocale(), { timeZone: plain ? 'UTC' : zone(), year: 'numeric', month: '2-digit', day: '2-digit' }),
  );
  return f.format(new Date(plain ? `${value}T00:00:00Z` : value));
}

/** Today's date in the shop's zone, `YYYY-MM-DD`, shifted by `days`. */
export function shopDay(days = 0, from = new Date()) {
  const d = new Date(from.getTime() + days * 86400000);
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: zone(), year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  return parts; // en-CA formats as YYYY-MM-DD
}

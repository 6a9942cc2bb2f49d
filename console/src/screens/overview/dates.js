// Calendar arithmetic on plain dates (`YYYY-MM-DD`, the shop's dates as the API takes them).

const DAY = 86400000;

function parse(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  return Date.UTC(y, m - 1, d);
}

function print(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** `ymd` shifted by `days`. */
export function addDays(ymd, days) {
  return print(parse(ymd) + days * DAY);
}

/** Days from `from` to `to`, both included (1 for the same day). */
export function spanDays(from, to) {
  return Math.round((parse(to) - parse(from)) / DAY) + 1;
}

/** Is `s` a real date written `YYYY-MM-DD`? */
export function isDate(s) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s || '')) return false;
  return print(parse(s)) === s;
}

/** The range of the same length just before `[from, to]`. */
export function previousRange(from, to) {
  const n = spanDays(from, to);
  return { from: addDays(from, -n), to: addDays(from, -1) };
}

/**
 * `[from, to]` cut into buckets: single days up to `maxDaily` days, weeks up to 26 weeks, else
 * about 30 equal periods (the last one maybe shorter). Each bucket is `{from, to}`.
 */
export function bucketSize(n, maxDaily = 31) {
  return n <= maxDaily ? 1 : n <= 182 ? 7 : Math.ceil(n / 30);
}

export function buckets(from, to, maxDaily = 31) {
  const n = spanDays(from, to);
  const size = bucketSize(n, maxDaily);
  const out = [];
  for (let i = 0; i < n; i += size) {
    const start = addDays(from, i);
    const end = addDays(from, Math.min(i + size, n) - 1);
    out.push({ from: start, to: end });
  }
  return out;
}

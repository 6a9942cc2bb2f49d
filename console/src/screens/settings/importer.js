// CSV import in the browser, as `kith import customers|orders` does it (kernel/kith/src/import.rs):
// the same columns (English and Chinese header names of common shop exports), the same events
// posted to `POST /v1/events`, and the same event ids, derived from the file's content (a
// customer row's values, an order's number), so importing a file again applies nothing twice.
// Rows of one order (one row per line item) must be consecutive; an order with a rejected row is
// not imported at all.

import { toMinor } from '../../format.js';
import { strings } from './strings.js';

/**
 * A reason a row is refused: its `code` and `vars` name it for the screen's words
 * (`why_<code>` in strings.js, in both languages); its message is the English.
 */
class Reason extends Error {
  constructor(code, vars = {}) {
    const text = strings.en[`why_${code}`] || code;
    super(text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k]))));
    this.code = code;
    this.vars = vars;
  }
}

export const FIELDS = [
  'phone', 'email', 'unionid', 'nick', 'name', 'gender', 'birthday', 'province', 'city',
  'order_id', 'paid_at', 'amount', 'sku', 'product_name', 'category', 'quantity', 'unit_price', 'discount', 'coupon_code', 'ignore',
];
const IDENTITY = ['phone', 'email', 'unionid', 'nick'];
const CUSTOMER_FIELDS = ['name', 'gender', 'birthday', 'province', 'city'];
const ORDER_FIELDS = ['order_id', 'paid_at', 'amount', 'sku', 'product_name', 'category', 'quantity', 'unit_price', 'discount', 'coupon_code'];

const ALIASES = {
  phone: ['phone', 'mobile', '手机', '手机号', '手机号码', '联系电话'],
  email: ['email', 'e-mail', '邮箱', '电子邮箱'],
  unionid: ['unionid', 'union_id'],
  nick: ['nick', 'nickname', '昵称', '买家昵称', '会员名'],
  name: ['name', '姓名', '收货人'],
  gender: ['gender', 'sex', '性别'],
  birthday: ['birthday', '生日', '出生日期'],
  province: ['province', '省', '省份'],
  city: ['city', '市', '城市'],
  order_id: ['order_id', 'order', '订单号', '订单编号'],
  paid_at: ['paid_at', '付款时间', '支付时间'],
  amount: ['amount', '实付金额', '支付金额', '买家实付'],
  sku: ['sku', '商品编码', 'sku编码'],
  product_name: ['product_name', 'product', '商品名称', '宝贝标题'],
  category: ['category', '类目', '商品类目'],
  quantity: ['quantity', 'qty', '数量', '购买数量'],
  unit_price: ['unit_price', 'price', '单价', '商品单价'],
  discount: ['discount', '优惠', '优惠金额'],
  coupon_code: ['coupon_code', 'coupon', '优惠券'],
};

/** Is `f` a field a column may be mapped to (`external:<source>` and `attr:<name>` included)? */
export function validField(f) {
  return FIELDS.includes(f) || /^external:[a-z0-9][a-z0-9_.-]{0,31}$/i.test(f) || /^attr:.+/.test(f);
}

/** The field a header names by default (`手机号` → phone), or `ignore`. */
export function defaultField(header) {
  const h = header.trim().toLowerCase();
  for (const [field, names] of Object.entries(ALIASES)) if (names.includes(h)) return field;
  return validField(h) && h !== 'ignore' ? h : 'ignore';
}

const isIdentity = (f) => IDENTITY.includes(f) || f.startsWith('external:');

/**
 * `parse_major_units`: `¥1,299.05` → 129905 in the currency's minor units (the shop's unless
 * given: 2 decimals for CNY, none for JPY).
 */
export function parseMajorUnits(raw, currency) {
  const cleaned = raw.trim().replace(/^[¥￥$]+/, '').replace(/,/g, '');
  if (!cleaned) throw new Reason('empty');
  const negative = cleaned.startsWith('-');
  const body = negative ? cleaned.slice(1) : cleaned;
  const [whole, frac = ''] = body.split(/\.(.*)/s);
  if (!whole || !/^\d+$/.test(whole) || !/^\d*$/.test(frac)) throw new Reason('notDecimal', { raw });
  // The currency's minor digits: one major unit in minor units is 10^digits.
  const digits = String(toMinor('1', currency)).length - 1;
  if (frac.length > digits) throw new Reason('tooManyDecimals', { raw, digits });
  const minor = toMinor(`${whole}${frac ? `.${frac}` : ''}`, currency);
  if (!Number.isSafeInteger(minor) || whole.length > 15) throw new Reason('tooLarge', { raw });
  return negative ? -minor : minor;
}

// Times as exports write them: a zone or offset is kept, a time without one is in the shop's zone.
const LOCAL = /^(\d{4})(?:[-/.](\d{1,2})[-/.](\d{1,2})|(\d{2})(\d{2})|年(\d{1,2})月(\d{1,2})日)(?:(?:[ T]|(?<=日))(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(?:\.(\d{1,9}))?秒?)?)?$/;
const OFFSET = /^(.*?\d)\s?(Z|[+-]\d{2}:?\d{2})$/i;

function validParts(y, mo, d, h, mi, s) {
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && h < 24 && mi < 60 && s < 60;
}

/** `{local: [y, mo, d, h, mi, s, ms]}` or `{utc: Date}` for `raw`, or null. */
function parseMoment(raw) {
  raw = raw.trim();
  if (/^\d+$/.test(raw)) {
    const num = (a, b) => Number(raw.slice(a, b));
    const local = (parts) => (validParts(...parts) ? { local: [...parts, 0] } : null);
    switch (raw.length) {
      case 8:
        return local([num(0, 4), num(4, 6), num(6, 8), 0, 0, 0]);
      case 12:
        return local([num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), 0]);
      case 14:
        return local([num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14)]);
      case 10:
        return { utc: new Date(Number(raw) * 1000) };
      case 13:
        return { utc: new Date(Number(raw)) };
      default:
        return null;
    }
  }
  const zoned = OFFSET.exec(raw);
  if (zoned) {
    const inner = parseMoment(zoned[1]);
    if (!inner || !inner.local || !/[ T]\d/.test(zoned[1])) return null;
    const [y, mo, d, h, mi, s, ms] = inner.local;
    const off = zoned[2].toUpperCase() === 'Z' ? 0 : (zoned[2][0] === '-' ? -1 : 1) * (Number(zoned[2].slice(1, 3)) * 60 + Number(zoned[2].slice(-2)));
    return { utc: new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms) - off * 60000) };
  }
  const m = LOCAL.exec(raw);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2] || m[4] || m[6]);
  const d = Number(m[3] || m[5] || m[7]);
  const h = Number(m[8] || 0);
  const mi = Number(m[9] || 0);
  const s = Number(m[10] || 0);
  const ms = m[11] ? Number(m[11].slice(0, 3).padEnd(3, '0')) : 0;
  if (m[8] === undefined && /[ T]/.test(raw)) return null;
  return validParts(y, mo, d, h, mi, s) ? { local: [y, mo, d, h, mi, s, ms] } : null;
}

/** Minutes `zone` is ahead of UTC at the instant `ms`. */
function zoneOffset(ms, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour) % 24, Number(parts.minute), Number(parts.second));
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

/** A time column (`paid_at`) as RFC 3339 in UTC. */
export function parseTime(raw, zone) {
  const m = parseMoment(raw);
  if (!m) throw new Reason('notTime', { raw });
  if (m.utc) {
    if (Number.isNaN(m.utc.getTime())) throw new Reason('notTime', { raw });
    return m.utc.toISOString();
  }
  const [y, mo, d, h, mi, s, ms] = m.local;
  const wall = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  // The earliest instant showing this wall time in the zone (none in a gap of a clock change).
  const offsets = new Set([zoneOffset(wall - 86400000, zone), zoneOffset(wall, zone), zoneOffset(wall + 86400000, zone)]);
  const candidates = [...offsets].map((off) => wall - off * 60000).filter((t) => zoneOffset(t, zone) === Math.round((wall - t) / 60000)).sort((a, b) => a - b);
  if (!candidates.length) throw new Reason('noSuchTime', { raw, zone });
  return new Date(candidates[0]).toISOString();
}

/** A date column (`birthday`): the date of any time layout, as written. */
export function parseDate(raw) {
  const m = parseMoment(raw);
  if (!m) throw new Reason('notDate', { raw });
  if (m.utc) {
    // With an offset: the date in that offset.
    const off = OFFSET.exec(raw.trim());
    const minutes = !off || off[2].toUpperCase() === 'Z' ? 0 : (off[2][0] === '-' ? -1 : 1) * (Number(off[2].slice(1, 3)) * 60 + Number(off[2].slice(-2)));
    return new Date(m.utc.getTime() + minutes * 60000).toISOString().slice(0, 10);
  }
  const [y, mo, d] = m.local;
  return `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function parseGender(raw) {
  const g = raw.trim().toLowerCase();
  if (['', '未知', 'unknown', 'u'].includes(g)) return null;
  if (['男', 'male', 'm'].includes(g)) return 'male';
  if (['女', 'female', 'f'].includes(g)) return 'female';
  throw new Reason('notGender', { raw });
}

// SHA-256: WebCrypto where the page is a secure context (https, localhost), else this.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
function sha256Js(bytes) {
  const len = bytes.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[len] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor((len * 8) / 2 ** 32));
  view.setUint32(padded.length - 4, (len * 8) >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(i * 4, x));
  return out;
}

export async function sha256(text) {
  const bytes = new TextEncoder().encode(text);
  if (globalThis.crypto && crypto.subtle) return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return sha256Js(bytes);
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Does a record have the header's fields (empty ones past them are taken)? */
function fits(fields, width) {
  return fields.length >= width && fields.slice(width).every((f) => f.trim() === '');
}

class RowError extends Error {
  constructor(field, reason) {
    super(reason.message);
    this.field = field;
    this.code = reason.code || null;
    this.vars = reason.vars || null;
  }
}

async function customerEvent(row) {
  const identities = [];
  const profile = {};
  const attributes = {};
  for (const { field, value, header } of row) {
    try {
      if (isIdentity(field)) identities.push({ kind: field, value });
      else if (field === 'gender') {
        const g = parseGender(value);
        if (g) profile.gender = g;
      } else if (field === 'birthday') profile.birthday = parseDate(value);
      else if (CUSTOMER_FIELDS.includes(field)) profile[field] = value;
      else if (field.startsWith('attr:')) attributes[field.slice(5)] = value;
      else if (field !== 'ignore') throw new Reason('orderField');
    } catch (e) {
      throw new RowError(header, e);
    }
  }
  if (Object.keys(attributes).length) profile.attributes = attributes;
  const content = row.map(({ value, header }) => `${header}\u001f${value}`).join('\u001e');
  const digest = hex((await sha256(content)).slice(0, 16));
  return { id: `import:customer:${digest}`, type: 'customer.upsert', identities, profile };
}

/**
 * The events of a CSV file and the rows refused while reading it.
 * `records`: parseCsv's; `columns`: the field of each header; `kind`: customers | orders.
 * Answers `{headers, events: [{event, lines}], rejected: [{line, field, reason}]}`.
 */
export async function buildEvents(records, columns, kind, zone) {
  const [head, ...rows] = records;
  const headers = head.fields.map((h) => h.replace(/^\ufeff/, '').trim());
  const events = [];
  const rejected = [];
  if (!columns.some(isIdentity)) throw new Error('no-identity');
  if (kind === 'orders' && !columns.includes('order_id')) throw new Error('no-order-id');
  const orderColumn = columns.indexOf('order_id');
  let order = null;
  let unplaced = null;
  const finish = (o) => {
    if (o.refused === null) {
      const body = { id: o.orderId, items: o.items };
      if (o.paidAt) body.paid_at = o.paidAt;
      if (o.amount !== null) body.amount = o.amount;
      if (o.couponCode) body.coupon_code = o.couponCode;
      events.push({ event: { id: `import:order:${o.orderId}`, type: 'order.paid', identities: o.identities, order: body }, lines: o.lines, fields: o.fieldsByLine });
    } else {
      for (const line of o.lines) {
        const why = new Reason('orderRefused', { order: o.orderId, line: o.refused });
        rejected.push({ line, field: 'order_id', reason: why.message, code: why.code, vars: why.vars });
      }
    }
  };
  const newOrder = (line, orderId) => ({ line, orderId, identities: [], paidAt: null, amount: null, couponCode: null, items: [], lines: [], refused: null });
  for (const rec of rows) {
    const { line, fields } = rec;
    const width = fits(fields, headers.length);
    try {
      if (!width) throw new RowError('', new Reason('width', { n: fields.length, m: headers.length }));
      const row = columns.map((field, i) => ({ field, value: fields[i].trim(), header: headers[i] })).filter((c) => c.value !== '');
      if (kind === 'customers') {
        events.push({ event: await customerEvent(row), lines: [line] });
        continue;
      }
      // An order row.
      let orderId = null;
      const ids = [];
      let paidAt = null;
      let amount = null;
      let coupon = null;
      const item = {};
      for (const { field, value, header } of row) {
        try {
          if (field === 'order_id') orderId = value;
          else if (isIdentity(field)) ids.push({ kind: field, value });
          else if (field === 'paid_at') paidAt = parseTime(value, zone);
          else if (field === 'amount') amount = parseMajorUnits(value);
          else if (field === 'coupon_code') coupon = value;
          else if (field === 'sku' || field === 'product_name' || field === 'category') item[field] = value;
          else if (field === 'quantity') {
            if (!/^[+-]?\d+$/.test(value)) throw new Reason('notWhole', { raw: value });
            item.quantity = Number(value);
          } else if (field === 'unit_price' || field === 'discount') item[field] = parseMajorUnits(value);
          else if (field !== 'ignore' && !field.startsWith('attr:')) throw new Reason('customerField');
        } catch (e) {
          throw new RowError(header, e);
        }
      }
      if (orderId === null) throw new RowError('order_id', new Reason('empty'));
      if (Object.keys(item).length && item.quantity === undefined) item.quantity = 1;
      if (!order || order.orderId !== orderId) {
        if (order) finish(order);
        order = newOrder(line, orderId);
      }
      order.lines.push(line);
      for (const id of ids) if (!order.identities.some((x) => x.kind === id.kind && x.value === id.value)) order.identities.push(id);
      order.paidAt = order.paidAt || paidAt;
      order.amount = order.amount ?? amount;
      order.couponCode = order.couponCode || coupon;
      if (Object.keys(item).length) order.items.push(item);
      if (unplaced !== null && order.line > unplaced && order.refused === null) order.refused = unplaced;
      unplaced = null;
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      rejected.push({ line, field: e.field, reason: e.message, code: e.code, vars: e.vars });
      if (kind !== 'orders') continue;
      if (!width) {
        // Its columns are shifted: which order it belongs to cannot be told. The order being
        // read is not imported, nor one starting next.
        if (order && order.refused === null) order.refused = line;
        unplaced = line;
        continue;
      }
      const id = orderColumn >= 0 ? (fields[orderColumn] || '').trim() : '';
      if (id) {
        if (!order || order.orderId !== id) {
          if (order) finish(order);
          order = newOrder(line, id);
        }
        if (order.refused === null) order.refused = line;
      }
    }
  }
  if (order) finish(order);
  return { headers, events, rejected };
}

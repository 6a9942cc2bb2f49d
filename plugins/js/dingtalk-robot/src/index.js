// dingtalk-robot: posts each message to a DingTalk group through a custom robot (钉钉群机器人),
// signed with the robot's secret (加签). See README.md.
//
// A send is `POST <endpoint>?access_token=…&timestamp=<ms>&sign=<sign>` with
// `{"msgtype": "text", "text": {"content"}, "at": {"isAtAll": false}}` (or `markdown` with a
// title), where sign = urlencode(base64(HMAC-SHA256(secret, "<timestamp>\n<secret>"))) and the
// timestamp is the kernel's clock. DingTalk answers HTTP 200 with `{"errcode", "errmsg"}`.

import { accepted, config, defineChannelConnector, invalid, log, now, rejected, retryAfter } from '@kith/plugin-sdk';
import { base64Encode, hmacSha256 } from '@kith/plugin-sdk/crypto';
import { request } from '@kith/plugin-sdk/http';

export const DEFAULTS = Object.freeze({
  endpoint: 'https://oapi.dingtalk.com/robot/send',
  keyword: null,
  msgtype: 'text',
  title: 'Kith',
});

/** Seconds to wait when a provider is busy and does not say (as plugins/connector-kit). */
const DEFAULT_RETRY_AFTER = 30;
/** Seconds to wait after DingTalk's rate limit (20 messages a minute per robot). */
const RATE_LIMIT_RETRY_AFTER = 60;
/** errcodes that mean "not now": sending too fast (130101; 410100 in newer answers). */
const RATE_LIMITED = [130101, 410100];
/** errcode -1: DingTalk is busy (系统繁忙). */
const BUSY = -1;
/**
 * A robot that keeps sending past its rate limit is held back for 10 minutes, during which
 * DingTalk answers its sends with a redirect (HTTP 302) instead of an errcode.
 */
const HELD_BACK_RETRY_AFTER = 600;

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** The template with `{{name}}` replaced by the variable `name`; unknown placeholders stay as they are. */
export function render(template, vars) {
  return template.replace(PLACEHOLDER, (whole, name) => (Object.hasOwn(vars, name) ? vars[name] : whole));
}

/** The `sign` query parameter for a timestamp (ms), before URL encoding. */
export function sign(secret, timestamp) {
  return base64Encode(hmacSha256(secret, `${timestamp}\n${secret}`));
}

/** The signed send URL. */
export function signedUrl({ endpoint, access_token: token, secret }, timestamp) {
  const query = `access_token=${encodeURIComponent(token)}&timestamp=${timestamp}&sign=${encodeURIComponent(sign(secret, timestamp))}`;
  return `${endpoint}${endpoint.includes('?') ? '&' : '?'}${query}`;
}

/** The JSON body for a message's text: text or markdown, the keyword first, mentioning nobody. */
export function body({ keyword, msgtype, title }, text) {
  const content = keyword ? `${keyword} ${text}` : text;
  const at = { isAtAll: false };
  if (msgtype === 'markdown') return { msgtype, markdown: { title, text: content }, at };
  return { msgtype: 'text', text: { content }, at };
}

function snippet(response) {
  return response.text().slice(0, 200);
}

/** DingTalk's answer as a delivery. */
export function verdict(response) {
  const status = response.status;
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) {
    const seconds = (response.header('retry-after') ?? '').trim();
    return retryAfter(/^\d+$/.test(seconds) && Number(seconds) <= 0xffffffff ? Number(seconds) : DEFAULT_RETRY_AFTER);
  }
  if (status === 302) {
    log.warn('dingtalk answered 302: the robot is held back for sending too fast');
    return retryAfter(HELD_BACK_RETRY_AFTER);
  }
  if (status < 200 || status > 299) return rejected(`provider answered ${status}: ${snippet(response)}`);
  let answer = null;
  try {
    answer = response.json();
  } catch {
    // Not JSON: told below.
  }
  const code = answer !== null && typeof answer === 'object' ? answer.errcode : undefined;
  if ((typeof code !== 'number' && typeof code !== 'string') || code === '' || !Number.isInteger(Number(code))) {
    return rejected(`dingtalk answered ${status} without an errcode: ${snippet(response)}`);
  }
  const errcode = Number(code);
  if (errcode === 0) return accepted(null);
  const reason = `dingtalk errcode ${errcode}: ${typeof answer.errmsg === 'string' ? answer.errmsg : ''}`;
  log.warn(reason);
  if (RATE_LIMITED.includes(errcode)) return retryAfter(RATE_LIMIT_RETRY_AFTER);
  if (errcode === BUSY) return retryAfter(DEFAULT_RETRY_AFTER);
  return rejected(reason);
}

export const { deliver, parseReceipt } = defineChannelConnector({
  deliver(context, message) {
    const settings = config(DEFAULTS);
    const timestamp = now();
    const payload = body(settings, render(message.template, message.vars));
    const response = request('POST', signedUrl(settings, timestamp), { 'content-type': 'application/json' }, JSON.stringify(payload));
    const delivery = verdict(response);
    if (delivery.tag === 'accepted') log.info(`message ${message.id} (customer ${message.customerId}) posted to the group as ${payload.msgtype}`);
    return delivery;
  },

  parseReceipt() {
    throw invalid('dingtalk group robots send no delivery receipts');
  },
});

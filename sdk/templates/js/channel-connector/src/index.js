// {{id}}: posts each message as JSON to the configured URL, and reads the provider's receipts.

import { accepted, config, defineChannelConnector, invalid, receipt, rejected, retryAfter } from '@kith/plugin-sdk';
import { request } from '@kith/plugin-sdk/http';

const STATUSES = ['delivered', 'failed', 'pending'];

export const { deliver, parseReceipt } = defineChannelConnector({
  deliver(context, message) {
    const { url } = config();
    const body = { id: message.id, to: message.recipient, template: message.template, variables: message.vars };
    const response = request('POST', url, { 'content-type': 'application/json' }, JSON.stringify(body));
    const status = response.status;
    if (status >= 200 && status <= 299) {
      let id = null;
      try {
        const answer = response.json();
        if (answer !== null && typeof answer === 'object' && typeof answer.id === 'string') id = answer.id;
      } catch {
        // Not JSON: the provider gave no id of its own.
      }
      return accepted(id ?? message.id);
    }
    if (status === 429 || status === 503) {
      const seconds = (response.header('retry-after') ?? '').trim();
      return retryAfter(/^\d+$/.test(seconds) && Number(seconds) <= 0xffffffff ? Number(seconds) : 30);
    }
    return rejected(`provider answered ${status}`);
  },

  parseReceipt(context, request) {
    let value;
    try {
      value = request.json();
    } catch (e) {
      throw invalid(`expected a receipt or a list of receipts as JSON: ${e.message}`);
    }
    return (Array.isArray(value) ? value : [value]).map((item) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) throw invalid('expected a receipt or a list of receipts as JSON: a receipt is an object');
      const { message_id: messageId, status, detail = null } = item;
      if (typeof messageId !== 'string') throw invalid('expected a receipt or a list of receipts as JSON: `message_id` must be a string');
      if (typeof status !== 'string') throw invalid('expected a receipt or a list of receipts as JSON: `status` must be a string');
      if (!STATUSES.includes(status)) throw invalid(`unknown status \`${status}\`: expected delivered, failed or pending`);
      if (detail !== null && typeof detail !== 'string') throw invalid('expected a receipt or a list of receipts as JSON: `detail` must be a string');
      return receipt({ messageId, status, detail });
    });
  },
});

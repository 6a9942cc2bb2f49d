import { host } from '../host.js';

export function buyers(after, limit) {
  host.enter('summaries.buyers', after, limit);
  return host.buyers.filter((b) => after === null || b.customerId > after).slice(0, limit);
}

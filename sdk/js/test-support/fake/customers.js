import { host } from '../host.js';

export function read(id) {
  host.enter('customers.read', id);
  if (typeof id !== 'number') throw new TypeError('s64 arguments are numbers in the QuickJS runtime');
  if (!host.customers.has(id)) host.fail('not-found', `no customer ${id}`);
  return host.customers.get(id);
}

export function histories(ids, since) {
  host.enter('customers.histories', ids, since);
  return host.histories;
}

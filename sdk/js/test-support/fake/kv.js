import { host } from '../host.js';

export function get(key) {
  host.enter('kv.get', key);
  return host.kv.has(key) ? host.kv.get(key) : null;
}

export function set(key, value) {
  host.enter('kv.set', key, value);
  if (!(value instanceof Uint8Array)) throw new TypeError('kv.set takes a Uint8Array');
  if (value.length > 64 * 1024) host.fail('quota-exceeded', 'value over 64 KiB');
  host.kv.set(key, value);
}

function remove(key) {
  host.enter('kv.delete', key);
  host.kv.delete(key);
}

export { remove as delete };

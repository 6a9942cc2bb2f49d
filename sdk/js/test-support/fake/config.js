import { host } from '../host.js';

export function get() {
  host.enter('config.get');
  return host.config;
}

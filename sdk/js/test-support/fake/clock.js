import { host } from '../host.js';

export function now() {
  host.enter('clock.now');
  return host.now;
}

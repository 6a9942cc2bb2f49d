import { host } from '../host.js';

export function context(windowDays) {
  host.enter('shop.context', windowDays);
  return host.shop;
}

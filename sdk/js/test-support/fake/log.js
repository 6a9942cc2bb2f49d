import { host } from '../host.js';

export function write(level, message) {
  host.enter('log.write', level, message);
  host.logs.push(`${level}: ${message}`);
}

import assert from 'node:assert/strict';
import test from 'node:test';
import { host } from '../test-support/setup.js';

// The QuickJS runtime has no console: the SDK gives it one that writes to the plugin's log.
const nodeConsole = globalThis.console;
delete globalThis.console;
await import('../src/index.js');
const shim = globalThis.console;
globalThis.console = nodeConsole;

test('console.* writes to the plugin log', () => {
  assert.notEqual(shim, nodeConsole);
  shim.log('count', 3, { a: 1n });
  shim.warn('careful');
  shim.error(new TypeError('boom'));
  assert.deepEqual(host.logs.slice(0, 2), ['info: count 3 {"a":"1"}', 'warn: careful']);
  assert.match(host.logs[2], /^error: TypeError: boom\n/);
});

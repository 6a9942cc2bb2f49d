import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { host } from '../test-support/setup.js';

const sdk = await import('../src/index.js');
const { config, kv, log } = sdk;

beforeEach(() => host.reset());

test('config() parses the JSON and fills defaults', () => {
  host.config = '{"min_spent": 5}';
  assert.deepEqual(config(), { min_spent: 5 });
  assert.deepEqual(config({ min_spent: 100000, other: 1 }), { min_spent: 5, other: 1 });
  host.config = '{}';
  assert.deepEqual(config({ min_spent: 100000 }), { min_spent: 100000 });
  host.config = 'null';
  assert.deepEqual(config({ unit: 100 }), { unit: 100 });
  assert.equal(config.raw(), 'null');
  host.config = '{oops';
  assert.throws(() => config({}), (e) => e.kind === 'invalid' && e.message.startsWith('configuration: '));
  host.config = '[1]';
  assert.throws(() => config({}), /expected a JSON object/);
});

test('a host error becomes a KithError of its kind', () => {
  host.denied.add('config.get');
  assert.throws(() => config(), (e) => e instanceof sdk.KithError && e.kind === 'access-denied' && e.message === 'config.get is not granted');
  assert.throws(() => sdk.readCustomer(9), (e) => e.kind === 'not-found');
});

test('log lines go to the host, and are dropped without the capability', () => {
  log.info('hello');
  log.write('warn', 42);
  assert.deepEqual(host.logs, ['info: hello', 'warn: 42']);
  host.denied.add('log.write');
  log.error('dropped');
  assert.equal(host.logs.length, 2);
  assert.throws(() => log.write('loud', 'x'), /log level/);
});

test('kv stores bytes, text and JSON', () => {
  assert.equal(kv.get('missing'), null);
  assert.equal(kv.getJson('missing'), null);
  kv.set('raw', new Uint8Array([1, 2]));
  assert.deepEqual(kv.get('raw'), new Uint8Array([1, 2]));
  kv.setJson('status', { state: 'fitted', buyers: 512, note: '上海' });
  assert.equal(Buffer.from(host.kv.get('status')).toString('utf8'), '{"state":"fitted","buyers":512,"note":"上海"}');
  assert.deepEqual(kv.getJson('status'), { state: 'fitted', buyers: 512, note: '上海' });
  kv.set('text', 'plain');
  assert.throws(() => kv.getJson('text'), (e) => e.kind === 'invalid' && /value of `text`/.test(e.message));
  kv.delete('text');
  assert.equal(kv.getText('text'), null);
  assert.throws(() => kv.set('big', new Uint8Array(70 * 1024)), (e) => e.kind === 'quota-exceeded');
});

test('reads pass numbers to the host and give plain values back', () => {
  host.customers.set(5, { id: 5n, stats: { totalSpent: 120000n }, tier: undefined });
  assert.deepEqual(sdk.readCustomer(5n), { id: 5, stats: { totalSpent: 120000 }, tier: null });
  assert.equal(sdk.now(), 1767225600000);
  sdk.histories([1n, 2], 0);
  sdk.shopContext(30);
  assert.deepEqual(host.calls.slice(-2), [['customers.histories', [1, 2], 0], ['shop.context', 30]]);
  assert.throws(() => sdk.histories([1.5], 0), /ids\[0\]/);
});

test('allBuyers() reads every page', () => {
  host.buyers = Array.from({ length: 5 }, (_, i) => ({ customerId: BigInt(i + 1), purchaseDays: 1 }));
  assert.deepEqual([...sdk.allBuyers(2)].map((b) => b.customerId), [1, 2, 3, 4, 5]);
  assert.deepEqual(host.calls.map(([name, after, limit]) => [name, after, limit]), [
    ['summaries.buyers', null, 2],
    ['summaries.buyers', 2, 2],
    ['summaries.buyers', 4, 2],
  ]);
});

import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { host } from '../test-support/setup.js';

const sdk = await import('../src/index.js');

beforeEach(() => host.reset());

// A subject as a host passes it: BigInts (as jco does; QuickJS passes numbers), absent options undefined.
const subject = (id, totalSpent, tags = []) => ({
  customer: { id: BigInt(id), stats: { totalSpent: BigInt(totalSpent), orderCount: 1 }, tags: tags.map((name) => ({ name, source: 'x' })), tier: undefined },
  event: undefined,
  order: undefined,
});
const context = { shopId: 1n, now: 1767225600000n, monetary: { average: 50000, quintiles: [] } };

test('defineTagRule hands plain values to evaluate and checks its decisions', () => {
  const seen = [];
  const { evaluate } = sdk.defineTagRule({
    evaluate(ctx, batch) {
      seen.push(ctx.now, batch[0].customer.stats.totalSpent, batch[0].event);
      return batch.filter((s) => s.customer.stats.totalSpent >= 100000).map((s) => sdk.addTag(s.customer.id, 'vip', 'r'));
    },
  });
  const decisions = evaluate(context, [subject(1, 120000), subject(2, 5)]);
  assert.deepEqual(seen, [1767225600000, 120000, null]);
  assert.deepEqual(decisions, [{ tag: 'add-tag', val: { customerId: 1, tag: 'vip', reason: 'r' } }]);
});

test('what an export throws becomes the WIT error', () => {
  const rule = (f) => sdk.defineTagRule({ evaluate: f }).evaluate;
  assert.throws(() => rule(() => { throw sdk.invalid('bad batch'); })(context, []), (e) => assert.deepEqual(e, { tag: 'invalid', val: 'bad batch' }) ?? true);
  assert.throws(() => rule(() => { throw sdk.notFound('x'); })(context, []), (e) => e.tag === 'not-found' && !(e instanceof Error));
  // A bug fails the call as `failed`, with its stack in the log.
  assert.throws(() => rule((ctx, batch) => batch[0].nope.deeper)(context, [subject(1, 1)]), (e) => e.tag === 'failed' && /^TypeError: /.test(e.val));
  assert.match(host.logs[0], /^error: evaluate: TypeError: .*\n/);
  // Exports are synchronous.
  assert.throws(() => rule(async () => [])(context, []), (e) => e.tag === 'failed' && /Promise/.test(e.val));
  // A wrong decision is refused, not passed on to trap in the runtime.
  assert.throws(() => rule(() => [sdk.addTag(1, 't', 'r'), { tag: 'add-tag', val: { customerId: 1.5, tag: 't', reason: 'r' } }])(context, []), (e) => e.tag === 'invalid');
});

test('defineLoyaltyScheme: review decides nothing when left out', () => {
  const scheme = sdk.defineLoyaltyScheme({ onEvents: () => [sdk.awardPoints(1, 1, 'k', 'r')] });
  assert.equal(scheme.onEvents(context, [subject(1, 1)]).length, 1);
  assert.deepEqual(scheme.review(context, [subject(1, 1).customer]), []);
  assert.throws(() => sdk.defineScoringModel({}), /expected a function `score`/);
});

test('defineChannelConnector gives message variables as an object and the request body as text', () => {
  const connector = sdk.defineChannelConnector({
    deliver: (ctx, message) => sdk.accepted(`${message.vars.name}:${message.customerId}`),
    parseReceipt: (ctx, request) => [sdk.receipt({ messageId: request.json().id, status: 'delivered', detail: request.header('Content-Type') })],
  });
  const message = { id: 'm1', customerId: 1n, channel: 'webhook', recipient: 'x', template: 't', variables: [['name', 'Li']] };
  assert.deepEqual(connector.deliver(context, message), { tag: 'accepted', val: 'Li:1' });
  const request = { method: 'POST', path: '/r', headers: [['content-type', 'application/json']], body: new Uint8Array(Buffer.from('{"id":"m1"}')) };
  assert.deepEqual(connector.parseReceipt(context, request), [{ messageId: 'm1', providerId: null, status: 'delivered', detail: 'application/json', at: null }]);
});

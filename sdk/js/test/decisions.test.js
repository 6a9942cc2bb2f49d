import assert from 'node:assert/strict';
import test from 'node:test';
import '../test-support/setup.js';

const sdk = await import('../src/index.js');

test('decision constructors give the WIT variant shapes', () => {
  assert.deepEqual(sdk.addTag(1, 'vip', 'spent 120000'), { tag: 'add-tag', val: { customerId: 1, tag: 'vip', reason: 'spent 120000' } });
  assert.deepEqual(sdk.removeTag(2, 'vip', 'r'), { tag: 'remove-tag', val: { customerId: 2, tag: 'vip', reason: 'r' } });
  assert.deepEqual(sdk.setScore(3, 'm', 2.4, 'high', 'e'), {
    tag: 'set-score',
    val: { customerId: 3, model: 'm', value: 2.4, label: 'high', explanation: 'e' },
  });
  assert.equal(sdk.setScore(3, 'm', 1, undefined, 'e').val.label, null);
  assert.deepEqual(sdk.awardPoints(4, 123, 'order:T1', 'order T1 paid'), {
    tag: 'award-points',
    val: { customerId: 4, points: 123, sourceKey: 'order:T1', reason: 'order T1 paid', expiresAt: null },
  });
  assert.deepEqual(sdk.clawBackPoints(4, 5, 'refund:T1', 'r').val.expiresAt, null);
  assert.deepEqual(sdk.changeTier(5, 'gold', 'r'), { tag: 'change-tier', val: { customerId: 5, tier: 'gold', reason: 'r' } });
  assert.deepEqual(sdk.emitEvent(null, 'plugin.x', { a: 1 }), { tag: 'emit-event', val: { customerId: null, eventType: 'plugin.x', payload: '{"a":1}' } });
});

test('ids, points and times are safe integers: numbers, or BigInts converted', () => {
  assert.equal(sdk.addTag(7n, 't', 'r').val.customerId, 7);
  assert.equal(sdk.awardPoints(1, 10n, 'k', 'r', 1767225600000n).val.expiresAt, 1767225600000);
  for (const bad of [7.5, NaN, '7', null, 2 ** 53, 2n ** 53n]) {
    assert.throws(() => sdk.addTag(bad, 't', 'r'), (e) => e instanceof sdk.KithError && e.kind === 'invalid' && /customerId/.test(e.message));
  }
  assert.throws(() => sdk.setScore(1, 'm', Infinity, null, 'e'), /value: expected a finite number/);
  assert.throws(() => sdk.addTag(1, 't', 42), /reason: expected a string/);
  assert.throws(() => sdk.emitEvent(1, 'plugin.x', [1]), /payload: expected an object/);
  assert.throws(() => sdk.retryAfter(-1), /seconds: -1 is out of range/);
});

test('hand-built decisions are checked and normalised', () => {
  const built = { tag: 'award-points', val: { customerId: 1n, points: 2n, sourceKey: 'k', reason: 'r' } };
  assert.deepEqual(sdk.decision(built), sdk.awardPoints(1, 2, 'k', 'r'));
  assert.throws(() => sdk.decision({ tag: 'add-tags', val: {} }), /not a decision/);
  assert.throws(() => sdk.decisions('nope'), /list of decisions/);
});

test('deliveries and receipts', () => {
  assert.deepEqual(sdk.accepted('p-1'), { tag: 'accepted', val: 'p-1' });
  assert.deepEqual(sdk.accepted(), { tag: 'accepted', val: null });
  assert.deepEqual(sdk.rejected('no'), { tag: 'rejected', val: 'no' });
  assert.deepEqual(sdk.retryAfter(30), { tag: 'retry-after', val: 30 });
  assert.deepEqual(sdk.receipt({ messageId: 'm1', status: 'delivered' }), {
    messageId: 'm1',
    providerId: null,
    status: 'delivered',
    detail: null,
    at: null,
  });
  assert.throws(() => sdk.receipt({ status: 'lost' }), /status: expected one of delivered, failed, pending/);
  assert.throws(() => sdk.delivery({ tag: 'ok' }), /not a delivery/);
});

import assert from 'node:assert/strict';
import test from 'node:test';
import '../test-support/setup.js';

const { fixed, fromHost, utf8Decode, utf8Encode } = await import('../src/index.js');

test('fixed() rounds a tie to even, like Rust and Python, and otherwise like toFixed', () => {
  assert.equal(fixed(2.4), '2.40');
  assert.equal(fixed(0.5), '0.50');
  assert.equal(fixed(0.125), '0.12'); // toFixed: 0.13
  assert.equal(fixed(0.375), '0.38');
  assert.equal(fixed(-0.125), '-0.12');
  assert.equal(fixed(2.675), '2.67'); // below the tie in binary
  assert.equal(fixed(1.005), '1.00');
  assert.equal(fixed(2.5, 0), '2');
  assert.equal(fixed(3.5, 0), '4');
  assert.equal(fixed(1 / 3, 4), '0.3333');
  assert.equal(fixed(NaN), 'NaN');
  assert.equal(fixed(-Infinity), '-inf');
});

test('UTF-8 round trip without TextEncoder', () => {
  for (const text of ['', 'abc', '上海 Li', 'emoji 😀 ok', '\u0000\u007f\u0080\u07ff\u0800\uffff']) {
    const bytes = utf8Encode(text);
    assert.deepEqual(bytes, new Uint8Array(Buffer.from(text, 'utf8')));
    assert.equal(utf8Decode(bytes), text);
  }
  assert.equal(utf8Decode(new Uint8Array([0x61, 0xff, 0x62])), 'a\ufffdb');
  assert.equal(utf8Decode(new Uint8Array([0xe4, 0xb8])), '\ufffd');
  assert.throws(() => utf8Decode(new Uint8Array([0xc0, 0x80]), { fatal: true }), TypeError);
});

test('fromHost makes safe BigInts numbers and absent options null', () => {
  const customer = { id: 7n, points: -3n, tier: undefined, stats: { totalSpent: 120000n, orderCount: 2 }, huge: 2n ** 60n, body: new Uint8Array([1]) };
  assert.deepEqual(fromHost(customer), {
    id: 7,
    points: -3,
    tier: null,
    stats: { totalSpent: 120000, orderCount: 2 },
    huge: 2n ** 60n,
    body: new Uint8Array([1]),
  });
});

import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import test from 'node:test';

const { base64Encode, hexEncode, hmacSha256, sha256 } = await import('../src/crypto.js');

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const repeat = (byte, n) => new Uint8Array(n).fill(byte);

// Deterministic pseudo-random bytes (xorshift32), so that a failure can be replayed.
function randomBytes(seed, n) {
  let x = seed | 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test('SHA-256: the NIST examples (FIPS 180-2 appendix B, and the empty message)', () => {
  assert.equal(hexEncode(sha256('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hexEncode(sha256('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(
    hexEncode(sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  assert.equal(hexEncode(sha256(repeat(0x61, 1_000_000))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('HMAC-SHA256: RFC 4231 test cases 1-4, 6 and 7', () => {
  const key25 = Uint8Array.from({ length: 25 }, (_, i) => i + 1);
  const cases = [
    [repeat(0x0b, 20), 'Hi There', 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['Jefe', 'what do ya want for nothing?', '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    [repeat(0xaa, 20), repeat(0xdd, 50), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    [key25, repeat(0xcd, 50), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
    [repeat(0xaa, 131), 'Test Using Larger Than Block-Size Key - Hash Key First', '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [
      repeat(0xaa, 131),
      'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.',
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ],
  ];
  for (const [i, [key, data, expected]] of cases.entries()) assert.equal(hexEncode(hmacSha256(key, data)), expected, `case ${i}`);
});

test('SHA-256 and HMAC-SHA256 agree with node:crypto on pseudo-random inputs, around the block sizes', () => {
  const lengths = [0, 1, 31, 32, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4097];
  for (let seed = 1; seed <= 200; seed++) lengths.push((seed * 7919) % 700);
  for (const [i, n] of lengths.entries()) {
    const data = randomBytes(i + 1, n);
    const key = randomBytes(i + 1000, (i * 37) % 150);
    assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'), `sha256, length ${n}, seed ${i + 1}`);
    assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'), `hmac, key ${key.length}, length ${n}`);
  }
});

test('strings are hashed as UTF-8; arrays of numbers are bytes', () => {
  for (const text of ['上海 Li', 'emoji 😀', 'SEC0123456789abcdef\n1767225600000']) {
    assert.equal(hex(sha256(text)), createHash('sha256').update(text, 'utf8').digest('hex'));
    assert.equal(hex(hmacSha256(text, text)), createHmac('sha256', text).update(text, 'utf8').digest('hex'));
  }
  assert.deepEqual(sha256([0x61, 0x62, 0x63]), sha256('abc'));
  assert.throws(() => sha256(42), TypeError);
  assert.throws(() => hmacSha256(null, 'x'), TypeError);
});

test('base64: the RFC 4648 examples, and Buffer on pseudo-random bytes', () => {
  const examples = { '': '', f: 'Zg==', fo: 'Zm8=', foo: 'Zm9v', foob: 'Zm9vYg==', fooba: 'Zm9vYmE=', foobar: 'Zm9vYmFy' };
  for (const [text, encoded] of Object.entries(examples)) assert.equal(base64Encode(text), encoded);
  for (let n = 0; n < 100; n++) {
    const data = randomBytes(n + 7, n);
    assert.equal(base64Encode(data), Buffer.from(data).toString('base64'), `length ${n}`);
  }
  assert.equal(base64Encode('上海'), Buffer.from('上海').toString('base64'));
});

test('a DingTalk robot signature: base64(HMAC-SHA256(secret, "timestamp\\nsecret"))', () => {
  const secret = 'SECexample0123456789';
  const stringToSign = `1767225600000\n${secret}`;
  assert.equal(base64Encode(hmacSha256(secret, stringToSign)), createHmac('sha256', secret).update(stringToSign).digest('base64'));
});

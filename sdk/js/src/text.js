// Text helpers the QuickJS runtime lacks (it has no TextEncoder or TextDecoder), and number
// formatting that agrees with Rust's `{:.N}` and Python's `:.Nf`.

/** The UTF-8 bytes of a string (lone surrogates become U+FFFD). */
export function utf8Encode(text) {
  const s = String(text);
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Uint8Array.from(out);
}

/**
 * The text of UTF-8 bytes. Invalid sequences become U+FFFD, or, with `{ fatal: true }`, throw a
 * TypeError.
 */
export function utf8Decode(bytes, { fatal = false } = {}) {
  const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes ?? []);
  let out = '';
  let chunk = [];
  const bad = () => {
    if (fatal) throw new TypeError('the bytes are not valid UTF-8');
    chunk.push(0xfffd);
  };
  for (let i = 0; i < b.length; ) {
    const x = b[i];
    let need = 0;
    let c = 0;
    let min = 0;
    if (x < 0x80) {
      chunk.push(x);
      i++;
    } else {
      if (x >= 0xc2 && x <= 0xdf) [need, c, min] = [1, x & 0x1f, 0x80];
      else if (x >= 0xe0 && x <= 0xef) [need, c, min] = [2, x & 0x0f, 0x800];
      else if (x >= 0xf0 && x <= 0xf4) [need, c, min] = [3, x & 0x07, 0x10000];
      if (need === 0) {
        bad();
        i++;
      } else {
        let j = 1;
        for (; j <= need && i + j < b.length && (b[i + j] & 0xc0) === 0x80; j++) c = (c << 6) | (b[i + j] & 0x3f);
        if (j <= need) {
          // Cut short: one replacement for the lead byte and the continuations read so far.
          bad();
          i += j;
        } else if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
          // Overlong, a surrogate or past U+10FFFF: the lead byte is bad, its continuations are read anew.
          bad();
          i += 1;
        } else {
          if (c >= 0x10000) chunk.push(0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
          else chunk.push(c);
          i += need + 1;
        }
      }
    }
    if (chunk.length >= 4096) {
      out += String.fromCharCode(...chunk);
      chunk = [];
    }
  }
  return out + String.fromCharCode(...chunk);
}

/**
 * `value` with `digits` decimals, rounding a tie to the even digit, as Rust's `format!("{:.2}")`
 * and Python's `f"{x:.2f}"` do (`Number.prototype.toFixed` rounds ties up: 0.125 gives "0.13"
 * there, "0.12" here). Non-finite values print as `NaN`, `inf` and `-inf`, like Rust.
 */
export function fixed(value, digits = 2) {
  const x = Number(value);
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) throw new RangeError('digits must be an integer from 0 to 20');
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Math.abs(x) >= 1e21) return x.toFixed(digits);
  const rounded = x.toFixed(digits);
  // A tie is exact in binary, so its decimal expansion is short and toFixed(100) shows it all.
  const exact = x.toFixed(100);
  const point = exact.indexOf('.');
  const rest = exact.slice(point + 1 + digits);
  if (rest[0] !== '5' || !/^50*$/.test(rest)) return rounded;
  const truncated = exact.slice(0, digits === 0 ? point : point + 1 + digits);
  const even = Number(truncated[truncated.length - 1]) % 2 === 0;
  return even ? truncated : rounded;
}

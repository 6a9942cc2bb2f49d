// Numbers in reasons, as the first-party plugins print them (a port of plugins/explain): money in
// major units with the shop's currency (`CNY 11.77`), and every comparison with the precision it
// needs, so that a value below another never reads as equal to it. Rounding is Rust's: `fixed`
// from the SDK rounds a tie to even, as `format!("{:.2}")` does.

import { fixed as format } from '@kith/plugin-sdk';

/** Extra decimals a comparison may take beyond its usual precision. */
const MAX_EXTRA_DECIMALS = 6;

/** Decimal places of a currency's minor unit (ISO 4217): 2 unless listed. */
export function minorDigits(currency) {
  switch (currency.toUpperCase()) {
    case 'BIF': case 'CLP': case 'DJF': case 'GNF': case 'ISK': case 'JPY': case 'KMF': case 'KRW': case 'PYG':
    case 'RWF': case 'UGX': case 'UYI': case 'VND': case 'VUV': case 'XAF': case 'XOF': case 'XPF':
      return 0;
    case 'BHD': case 'IQD': case 'JOD': case 'KWD': case 'LYD': case 'OMR': case 'TND':
      return 3;
    case 'CLF': case 'UYW':
      return 4;
    default:
      return 2;
  }
}

function fixed(value, decimals, trim) {
  const text = format(value, decimals);
  if (!trim || !text.includes('.')) return text;
  return text.replace(/0+$/, '').replace(/\.$/, '');
}

/** `value` and `other` at `decimals` places, or more while two different values would print the same. */
export function pair(value, other, decimals, trim) {
  let places = decimals;
  while (value !== other && places < decimals + MAX_EXTRA_DECIMALS && format(value, places) === format(other, places)) places++;
  return [fixed(value, places, trim), fixed(other, places, trim)];
}

/** A measure such as an order count: at most 2 decimals, trailing zeros removed (`3`, `2.96`). */
export function number(value) {
  return fixed(value, 2, true);
}

function withCurrency(amount, currency) {
  return currency === '' ? amount : `${currency} ${amount}`;
}

function major(minor, currency) {
  return minor / 10 ** minorDigits(currency);
}

/** An amount in minor units, in major units with the currency's code: `money(1177, 'USD')` is `USD 11.77`. */
export function money(minor, currency) {
  return withCurrency(fixed(major(minor, currency), minorDigits(currency), false), currency);
}

/** Three amounts printed together, all at the precision that tells the first two apart. */
export function moneyTriple(minor, other, third, currency) {
  const [a, b] = pair(major(minor, currency), major(other, currency), minorDigits(currency), false);
  const dot = b.indexOf('.');
  const places = dot < 0 ? 0 : b.length - dot - 1;
  return [withCurrency(a, currency), withCurrency(b, currency), withCurrency(fixed(major(third, currency), places, false), currency)];
}

// Names of the kernel's codes (outcomes, skip reasons, channels) in the console's language:
// a code without a translation is shown as the kernel sent it.
import { number } from '../../format.js';

/** A channel by its name in the console's language (a channel of the shop's own as it is named). */
export function channelName(t, channel) {
  const key = `ch_${channel}`;
  const text = t(key);
  return text === key ? channel : text;
}

/** A step's outcomes (`done 12 · skipped 3`) in the console's language. */
export function outcomeList(t, outcomes) {
  return Object.entries(outcomes || {})
    .map(([k, v]) => {
      const key = `oc_${k}`;
      const name = t(key);
      return `${name === key ? k : name} ${number(v, 0)}`;
    })
    .join(' · ');
}

/** Why runs skipped a step: the kernel's reason (its own words, translated where known). */
export function skipReason(t, reason) {
  const key = `sk_${reason}`;
  const text = t(key);
  return text === key ? reason : text;
}


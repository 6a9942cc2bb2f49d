// Small helpers shared by the overview, customers and settings screens.
import { currentLocale } from '../../session.js';

/**
 * A model's label as plugins write it, `code|中文|English` (e.g. `L|忠诚|Loyalty`), in the
 * console's language; a label without the parts is shown as written.
 */
export function labelText(label) {
  if (!label) return '';
  const parts = String(label).split('|');
  if (parts.length < 3) return parts.length === 2 ? parts[1] : parts[0];
  return currentLocale() === 'zh-CN' ? parts[1] : parts[2];
}

/** Run `fn` over `items` with at most `limit` at once; answers the results in order. */
export async function pool(items, limit, fn, signal) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** (now − before) ÷ before, or null when there is nothing to compare with. */
export function change(now, before) {
  if (now === null || now === undefined || before === null || before === undefined) return null;
  if (before === 0) return null;
  return (now - before) / Math.abs(before);
}

/** The API's message about its field without the field's name before it (`identity: is not…` → `is not…`). */
export function fieldMessage(error) {
  if (!error) return null;
  const m = error.message || '';
  return error.field && m.startsWith(`${error.field}: `) ? m.slice(error.field.length + 2) : m;
}

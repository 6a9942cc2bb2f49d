// Two languages, zh-CN and en. Each screen keeps its own strings beside its code:
//
//   const strings = { en: { title: 'Customers', found: '{n} found' }, 'zh-CN': { title: '客户', found: '找到 {n} 位' } };
//   const t = useT(strings);  t('found', { n: 3 })
//
// A key missing in the current language falls back to English, then to the key itself.
import { currentLocale, useSession } from './session.js';

export function translate(strings, key, vars) {
  const locale = currentLocale();
  const text = (strings[locale] && strings[locale][key]) ?? (strings.en && strings.en[key]) ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (vars[name] === undefined ? m : String(vars[name])));
}

export function useT(strings) {
  useSession(); // re-render when the locale changes
  return (key, vars) => translate(strings, key, vars);
}

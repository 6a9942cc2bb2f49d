// Time-series charts on uPlot (about 20 KB gzipped): a line per series over days.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { useT } from './i18n.js';
import 'uplot/dist/uPlot.min.css';

const strings = { en: { date: 'Date' }, 'zh-CN': { date: '日期' } };

const COLORS = ['#2563eb', '#f97316', '#16a34a', '#9333ea', '#dc2626', '#0891b2'];

/**
 * `days`: ['YYYY-MM-DD', …]; `series`: [{label, values: [number|null, …], dashed?}].
 * `format(v)` labels the y axis and the legend. The figures are also in a table for screen readers.
 */
export function LineChart({ days, series, height = 220, format, label }) {
  const t = useT(strings);
  const ref = useRef(null);
  const show = format || ((v) => String(v));
  useEffect(() => {
    const el = ref.current;
    if (!el || !days.length) return undefined;
    const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const fmt = format || ((v) => String(v));
    const opts = {
      width: Math.max(280, el.clientWidth || 600),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'UTC'),
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map((v) => fmt(v)), size: 70 }],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          dash: s.dashed ? [6, 4] : undefined,
          value: (u, v) => (v === null || v === undefined ? '—' : fmt(v)),
        })),
      ],
    };
    const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth), height });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [JSON.stringify(days), JSON.stringify(series), height]);
  return (
    <figure class="chart" aria-label={label}>
      <div ref={ref} aria-hidden="true" />
      <table class="sr-only">
        <caption>{label}</caption>
        <thead>
          <tr>
            <th scope="col">{t('date')}</th>
            {series.map((s) => (
              <th scope="col">{s.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {days.map((d, i) => (
            <tr>
              <th scope="row">{d}</th>
              {series.map((s) => (
                <td>{s.values[i] === null || s.values[i] === undefined ? '' : show(s.values[i])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

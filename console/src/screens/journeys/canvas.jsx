// The journey on a canvas: nodes as buttons laid out left to right in layers, edges as SVG
// curves under them (decoration: the panels name every connection in words).
import { useState } from 'preact/hooks';
import { useT } from '../../i18n.js';
import { number } from '../../format.js';
import { strings } from './strings.js';
import { outcomeList } from './names.js';
import { NODE_H, NODE_W, TRIGGER, kindOf, layout } from './graph.js';

const ICONS = { trigger: '⚡', send: '✉', coupon: '¥', tag: '#', points: '★', wait: '◔', branch: '⋔', split: '⚖', exit: '■' };

function triggerSummary(d, t) {
  const tr = (d && d.trigger) || {};
  if (tr.event) return `${tr.event}${tr.where && tr.where.length ? ` (+${tr.where.length})` : ''}`;
  if (tr.segment) return `${t('segment')} #${tr.segment}`;
  if (tr.date) return `${tr.date.field} ${tr.date.offset_days >= 0 ? '+' : ''}${tr.date.offset_days || 0}d ${tr.date.at || '09:00'}`;
  return '—';
}

export function stepSummary(step, t) {
  const k = kindOf(step);
  const s = step[k];
  switch (k) {
    case 'send':
      return `${s.channel || '?'} · ${s.template || '?'}`;
    case 'coupon':
      return `#${s.template_id}${s.by_trigger_amount && s.by_trigger_amount.length ? ` +${s.by_trigger_amount.length}` : ''}`;
    case 'tag':
      return s.add !== undefined ? `+ ${s.add}` : `− ${s.remove}`;
    case 'points':
      return `+${s.award}`;
    case 'wait': {
      if (s.before_coupon_expires_days !== undefined) return `coupon −${s.before_coupon_expires_days}d`;
      const parts = [];
      if (s.days) parts.push(`${s.days}d`);
      if (s.hours) parts.push(`${s.hours}h`);
      if (s.minutes) parts.push(`${s.minutes}m`);
      if (s.until) parts.push(`→ ${s.until}`);
      return parts.join(' ') || '—';
    }
    case 'branch':
      return s.event ? `${t('event')}: ${s.event}` : t('bm_customer');
    case 'split':
      return (Array.isArray(s) ? s : []).map((v) => `${v.variant} ${v.weight}`).join(' / ');
    default:
      return t('exitText');
  }
}

/** Runs through each step (all versions), by outcome, from the journey's statistics. */
export function stepCounts(stats) {
  const out = {};
  for (const s of (stats && stats.steps) || []) {
    const o = out[s.step] || (out[s.step] = { total: 0, outcomes: {} });
    for (const [k, n] of Object.entries(s.outcomes || {})) {
      o.total += n;
      o.outcomes[k] = (o.outcomes[k] || 0) + n;
    }
  }
  return out;
}

export function Canvas({ definition, selected, onSelect, fault, faultText, counts, entered, tools }) {
  const t = useT(strings);
  const g = layout(definition);
  const pos = new Map(g.nodes.map((n) => [n.id, n]));
  const pad = 16;
  const [zoom, setZoom] = useState(1);
  const labelOf = (id) => {
    if (id === TRIGGER) return `${t('trigger')}: ${triggerSummary(definition, t)}`;
    const step = definition.steps[id];
    return `${t(`k_${kindOf(step)}`)} ${id}: ${stepSummary(step, t)}`;
  };
  return (
    <>
    <div class="jn-canvas-tools">
      {tools}
      <span class="spacer" />
      <label class="jn-zoom">
        {t('zoom')}
        <select value={String(zoom)} onChange={(e) => setZoom(Number(e.currentTarget.value))}>
          {[1, 0.85, 0.7, 0.55].map((z) => (
            <option value={String(z)}>{Math.round(z * 100)}%</option>
          ))}
        </select>
      </label>
    </div>
    <div class="jn-canvas-wrap" role="region" aria-label={t('graph')} tabIndex={0}>
      <div class="jn-canvas" style={{ width: `${g.width + pad * 2}px`, height: `${g.height + pad * 2 + 24}px`, zoom: String(zoom) }} data-testid="journey-canvas">
        <svg class="jn-edges" width={g.width + pad * 2} height={g.height + pad * 2 + 24} aria-hidden="true">
          <defs>
            <marker id="jn-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b" />
            </marker>
          </defs>
          {g.edges.map((e) => {
            const a = pos.get(e.from);
            const b = pos.get(e.to);
            if (!a || !b) return null;
            const x1 = a.x + NODE_W + pad;
            const y1 = a.y + NODE_H / 2 + pad;
            const x2 = b.x + pad;
            const y2 = b.y + NODE_H / 2 + pad;
            const back = x2 <= x1;
            const dx = back ? 80 : Math.max(30, (x2 - x1) / 2);
            const d = back ? `M ${x1} ${y1} C ${x1 + dx} ${y1 + 90}, ${x2 - dx} ${y2 + 90}, ${x2} ${y2}` : `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
            const cls = e.label === 'yes' ? 'yes' : e.label === 'no' ? 'no' : e.label ? 'variant' : '';
            return (
              <g class={`jn-edge ${cls}`}>
                <path d={d} marker-end="url(#jn-arrow)" />
                {e.label && (
                  <text x={(x1 + x2) / 2} y={(y1 + y2) / 2 - 6} text-anchor="middle">
                    {cls === 'yes' ? t('edgeYes') : cls === 'no' ? t('edgeNo') : e.label}
                  </text>
                )}
              </g>
            );
          })}
        </svg>
        {g.unreached.length > 0 && (
          <div class="jn-col-label" style={{ left: `${Math.min(...g.unreached.map((id) => pos.get(id).x)) + pad}px` }}>
            {t('unconnected')}
          </div>
        )}
        {g.nodes.map((n) => {
          const isTrigger = n.id === TRIGGER;
          const kind = isTrigger ? 'trigger' : kindOf(definition.steps[n.id]);
          const bad = fault && fault.node === n.id;
          const c = isTrigger ? null : counts && counts[n.id];
          return (
            <button
              type="button"
              key={n.id}
              class={`jn-node kind-${kind} ${selected === n.id ? 'selected' : ''} ${bad ? 'has-error' : ''} ${g.unreached.includes(n.id) ? 'unreached' : ''}`}
              style={{ left: `${n.x + pad}px`, top: `${n.y + pad}px`, width: `${NODE_W}px`, height: `${NODE_H}px` }}
              aria-pressed={selected === n.id ? 'true' : 'false'}
              aria-label={`${labelOf(n.id)}${bad ? ` — ${t('faulty')}: ${faultText}` : ''}`}
              data-testid="journey-node"
              data-step={n.id}
              data-kind={kind}
              data-error={bad ? 'true' : undefined}
              onClick={() => onSelect(n.id)}
            >
              <span class="jn-node-head">
                <span class="jn-icon" aria-hidden="true">
                  {ICONS[kind]}
                </span>
                <span class="jn-kind">{isTrigger ? t('trigger') : t(`k_${kind}`)}</span>
                {!isTrigger && <span class="jn-id">{n.id}</span>}
              </span>
              <span class="jn-summary">{isTrigger ? triggerSummary(definition, t) : stepSummary(definition.steps[n.id], t)}</span>
              {bad ? (
                <span class="jn-node-error" data-testid="node-error">
                  {faultText}
                </span>
              ) : (
                <span class="jn-counts" data-testid="node-count">
                  {isTrigger
                    ? entered !== undefined && entered !== null
                      ? `${t('entered')} ${number(entered, 0)}`
                      : ''
                    : c
                      ? outcomeList(t, c.outcomes)
                      : ''}
                </span>
              )}
            </button>
          );
        })}
      </div>
    </div>
    </>
  );
}

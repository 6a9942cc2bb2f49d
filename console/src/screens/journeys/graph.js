// A journey definition as a graph: its steps' kinds and edges, a layered left-to-right layout,
// adding and removing steps, and which node an API error names.

export const TRIGGER = '@trigger';
export const KINDS = ['send', 'coupon', 'tag', 'points', 'wait', 'branch', 'split', 'exit'];
const LINEAR = ['send', 'coupon', 'tag', 'points', 'wait'];

export function kindOf(step) {
  return KINDS.find((k) => step && step[k] !== undefined) || 'exit';
}

/** Edges out of a step: [{to, label, field}]. */
export function edgesOf(step) {
  const out = [];
  if (!step) return out;
  if (step.next) out.push({ to: step.next, label: '', field: 'next' });
  if (step.yes) out.push({ to: step.yes, label: 'yes', field: 'yes' });
  if (step.no) out.push({ to: step.no, label: 'no', field: 'no' });
  if (Array.isArray(step.split)) step.split.forEach((v, i) => v && v.next && out.push({ to: v.next, label: v.variant, field: `split[${i}].next` }));
  return out;
}

export const NODE_W = 156;
export const NODE_H = 66;
const GAP_X = 38;
const GAP_Y = 26;

/**
 * Layers by the longest path from the trigger (steps may not loop; a loop the author drew is cut
 * where it closes); steps nothing reaches go in a last column. Answers
 * `{nodes: [{id, x, y, layer}], edges: [{from, to, label}], width, height, unreached}`.
 */
export function layout(definition) {
  const steps = (definition && definition.steps) || {};
  const ids = Object.keys(steps);
  const start = definition && steps[definition.start] ? definition.start : null;
  const layer = new Map([[TRIGGER, 0]]);
  const order = [TRIGGER];
  const seen = new Set([TRIGGER]);
  // Longest path from `roots` (placed at `base`), relaxing along a topological order (a DAG; an
  // edge closing a loop is ignored); then breadth first, so children sit near their parents.
  const place = (roots, base) => {
    const topo = [];
    const state = new Map();
    const visit = (id) => {
      if (state.has(id) || seen.has(id)) return;
      state.set(id, 1);
      for (const e of edgesOf(steps[id])) if (steps[e.to]) visit(e.to);
      state.set(id, 2);
      topo.push(id);
    };
    roots.forEach(visit);
    topo.reverse();
    const rank = new Map(topo.map((id, i) => [id, i]));
    roots.forEach((r) => layer.set(r, base));
    for (const id of topo) {
      const l = layer.get(id) ?? base;
      for (const e of edgesOf(steps[id])) {
        if (!rank.has(e.to) || rank.get(e.to) <= rank.get(id)) continue;
        layer.set(e.to, Math.max(layer.get(e.to) ?? 0, l + 1));
      }
    }
    const queue = roots.filter((r) => !seen.has(r));
    queue.forEach((r) => seen.add(r));
    while (queue.length) {
      const id = queue.shift();
      order.push(id);
      for (const e of edgesOf(steps[id])) {
        if (steps[e.to] && !seen.has(e.to)) {
          seen.add(e.to);
          queue.push(e.to);
        }
      }
    }
  };
  if (start) place([start], 1);
  // Steps nothing reaches from the trigger: their own graph, to the right of the rest.
  let unreached = ids.filter((id) => !seen.has(id));
  if (unreached.length) {
    const targeted = new Set(unreached.flatMap((id) => edgesOf(steps[id]).map((e) => e.to)));
    let roots = unreached.filter((id) => !targeted.has(id));
    if (!roots.length) roots = [unreached[0]];
    place(roots, Math.max(0, ...[...layer.values()]) + 1);
    // What a loop among them hides.
    const rest = ids.filter((id) => !seen.has(id));
    if (rest.length) place(rest, Math.max(0, ...[...layer.values()]) + 1);
  }
  const columns = new Map();
  for (const id of order) {
    const l = layer.get(id);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(id);
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const height = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const nodes = [];
  for (const [l, col] of columns) {
    const colHeight = col.length * NODE_H + (col.length - 1) * GAP_Y;
    const top = (height - colHeight) / 2;
    col.forEach((id, i) => nodes.push({ id, layer: l, x: l * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) }));
  }
  const edges = [];
  if (start) edges.push({ from: TRIGGER, to: start, label: '' });
  for (const id of ids) for (const e of edgesOf(steps[id])) if (steps[e.to]) edges.push({ from: id, to: e.to, label: e.label });
  const layers = Math.max(0, ...nodes.map((n) => n.layer)) + 1;
  unreached = ids.filter((id) => {
    const reach = new Set();
    const walk = (x) => {
      if (reach.has(x) || !steps[x]) return;
      reach.add(x);
      edgesOf(steps[x]).forEach((e) => walk(e.to));
    };
    if (start) walk(start);
    return !reach.has(id);
  });
  return { nodes, edges, width: layers * NODE_W + (layers - 1) * GAP_X, height, unreached };
}

export function newStep(kind, ctx = {}) {
  switch (kind) {
    case 'send':
      return { send: { channel: 'sms', template: '' } };
    case 'coupon':
      return { coupon: { template_id: ctx.couponTemplate || 1 } };
    case 'tag':
      return { tag: { add: '' } };
    case 'points':
      return { points: { award: 10 } };
    case 'wait':
      return { wait: { days: 1 } };
    case 'branch':
      return { branch: { event: 'order.paid' } };
    case 'split':
      return { split: [{ variant: 'A', weight: 50 }, { variant: 'B', weight: 50 }] };
    default:
      return { exit: true };
  }
}

export function freshId(steps, kind) {
  for (let n = 1; ; n++) {
    const id = `${kind}-${n}`;
    if (!steps[id]) return id;
  }
}

/**
 * Add a step of `kind` after `after` (a step id or the trigger): it takes the place of what
 * followed, which then follows it (a linear step's `next`, a branch's `yes`, a split's first
 * variant). Answers `[definition, id]`.
 */
export function addStep(definition, kind, after, ctx) {
  const steps = { ...(definition.steps || {}) };
  const id = freshId(steps, kind);
  const step = newStep(kind, ctx);
  const hook = (follower) => {
    if (!follower || kind === 'exit') return;
    if (LINEAR.includes(kind)) step.next = follower;
    else if (kind === 'branch') step.yes = follower;
    else if (kind === 'split') step.split = step.split.map((v, i) => (i === 0 ? { ...v, next: follower } : v));
  };
  let def = { ...definition, steps };
  if (after === TRIGGER) {
    hook(steps[definition.start] ? definition.start : null);
    def.start = id;
  } else if (steps[after]) {
    const prev = { ...steps[after] };
    const pk = kindOf(prev);
    if (LINEAR.includes(pk)) {
      // An exit ends the way: after a step that leads on, it stays unconnected rather than cut it.
      if (kind !== 'exit' || !prev.next) {
        hook(prev.next);
        prev.next = id;
      }
    } else if (pk === 'branch') {
      if (!prev.yes) prev.yes = id;
      else if (!prev.no) prev.no = id;
    } else if (pk === 'split') {
      const i = prev.split.findIndex((v) => !v.next);
      if (i >= 0) prev.split = prev.split.map((v, j) => (j === i ? { ...v, next: id } : v));
    }
    steps[after] = prev;
  }
  steps[id] = step;
  if (!steps[def.start]) def.start = id;
  return [def, id];
}

/** Remove a step; what pointed at it points at what it led to (its first way on), or ends. */
export function removeStep(definition, id) {
  const steps = { ...(definition.steps || {}) };
  const gone = steps[id];
  delete steps[id];
  const onward = edgesOf(gone)[0]?.to;
  const repl = onward && onward !== id ? onward : undefined;
  for (const [sid, s] of Object.entries(steps)) {
    let changed = false;
    const copy = { ...s };
    for (const f of ['next', 'yes', 'no']) {
      if (copy[f] === id) {
        if (repl) copy[f] = repl;
        else delete copy[f];
        changed = true;
      }
    }
    if (Array.isArray(copy.split) && copy.split.some((v) => v.next === id)) {
      copy.split = copy.split.map((v) => {
        if (v.next !== id) return v;
        const { next, ...rest } = v;
        return repl ? { ...rest, next: repl } : rest;
      });
      changed = true;
    }
    if (changed) steps[sid] = copy;
  }
  let start = definition.start;
  if (start === id) start = repl || Object.keys(steps)[0] || '';
  return { ...definition, steps, start };
}

/**
 * The node an API error names, and the rest of its path: `definition.steps.points-1.points.award`
 * → `{node: 'points-1', rest: 'points.award'}`; the trigger, entry, goal, budget, holdout and start
 * → the trigger node.
 */
export function faultyNode(error, definition) {
  if (!error || !error.field || !error.field.startsWith('definition')) return null;
  const f = error.field;
  const m = /^definition\.steps\.([A-Za-z0-9_-]+)(?:\.(.*))?$/.exec(f);
  if (m && definition && definition.steps && definition.steps[m[1]]) return { node: m[1], rest: m[2] || '' };
  const rest = f.replace(/^definition\.?/, '');
  return { node: TRIGGER, rest };
}

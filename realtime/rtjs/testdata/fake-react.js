// fake-react.js: the smallest hooks runtime that runs react.js in a test
// page without React (the test machine has no network to fetch it). One
// component; state changes re-render it in a microtask; effects run after
// each render when their dependencies change, cleaning up the previous run.
let component = null;
let hooks = [];
let idx = 0;
let effects = [];
let scheduled = false;

export function render(fn) {
  component = fn;
  rerender();
}

export function unmount() {
  for (const h of hooks) if (h && h.effect && h.cleanup) h.cleanup();
  component = null;
}

function rerender() {
  if (!component) return;
  idx = 0;
  window.renders = (window.renders || 0) + 1;
  component();
  const list = effects;
  effects = [];
  for (const [h, fn] of list) {
    if (h.cleanup) h.cleanup();
    h.cleanup = fn();
  }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => { scheduled = false; rerender(); });
}

export function useState(initial) {
  const i = idx++;
  if (!(i in hooks)) hooks[i] = { value: initial };
  const h = hooks[i];
  return [h.value, (v) => { if (h.value !== v) { h.value = v; schedule(); } }];
}

export function useRef(initial) {
  const i = idx++;
  if (!(i in hooks)) hooks[i] = { current: initial };
  return hooks[i];
}

export function useCallback(fn, deps) {
  const i = idx++;
  const h = hooks[i];
  if (!h || !deps || deps.some((d, k) => d !== h.deps[k])) hooks[i] = { fn, deps };
  return hooks[i].fn;
}

export function useEffect(fn, deps) {
  const i = idx++;
  let h = hooks[i];
  if (!h) h = hooks[i] = { effect: true, deps: undefined, cleanup: undefined };
  const changed = !h.deps || !deps || deps.some((d, k) => d !== h.deps[k]);
  if (changed) {
    h.deps = deps;
    effects.push([h, fn]);
  }
}

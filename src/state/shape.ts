// The shape of a JSON file bootstrap reads, as data, and the one checker for it. Every file read
// back (state.json, journals, lock records, the outbox, snapshots) is checked before its fields
// are used: a hand-edited or torn file is reported with the path of what is off, never a crash.
//
// A shape: a type name (`string`, `number`, `boolean`, `object`, alternatives with `|`, `?` at the
// end for null or absent allowed), an object of fields (`'?'` among them: the object may be null
// or absent), `{ '*': shape }` a map of one shape, `[shape]` an array of one shape and
// `[shape, '?']` one that may be null or absent. Unknown fields are kept (a newer minor field).

export type Shape = string | { [field: string]: Shape } | { '*': Shape } | [Shape] | [Shape, '?'];

/** What is off in `value`, named by its path (`phases[2].steps[0].name is 5, not a string`), or null. */
export function shapeProblem(value: unknown, shape: Shape, path = ''): string | null {
  const at = path || 'the document';
  if (typeof shape === 'string') {
    const nullable = shape.endsWith('?');
    if (value === null || value === undefined) return nullable ? null : `${at} is missing or null`;
    const types = shape.replace(/\?$/, '').split('|');
    const fits = types.some((t) => (t === 'object' ? isObject(value) : typeof value === t && (t !== 'number' || Number.isFinite(value))));
    return fits ? null : `${at} is ${preview(value)}, not a ${types.join(' or ')}`;
  }
  if (Array.isArray(shape)) {
    if ((value === null || value === undefined) && shape[1] === '?') return null;
    if (!Array.isArray(value)) return `${at} is ${value === undefined ? 'missing' : preview(value)}, not an array`;
    for (const [i, v] of value.entries()) {
      const p = shapeProblem(v, shape[0], `${path}[${i}]`);
      if (p) return p;
    }
    return null;
  }
  if ((value === null || value === undefined) && Object.hasOwn(shape, '?')) return null;
  if (!isObject(value)) return `${at} is ${value === undefined ? 'missing' : preview(value)}, not an object`;
  const field = (k: string) => `${path ? `${path}.` : ''}${k}`;
  if (Object.hasOwn(shape, '*')) {
    for (const [k, v] of Object.entries(value)) {
      const p = shapeProblem(v, (shape as { '*': Shape })['*'], field(k));
      if (p) return p;
    }
    return null;
  }
  for (const [k, s] of Object.entries(shape)) {
    if (k === '?') continue;
    const p = shapeProblem(value[k], s, field(k));
    if (p) return p;
  }
  return null;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A value in a message, by its kind only: a file of the wrong shape may hold a secret where a
 * string belongs (a setting of state.json read before the secrets are known), so no value is shown.
 */
function preview(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

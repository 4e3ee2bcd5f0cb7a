// A small JSON Schema (2020-12) checker for the keywords schema/callback.schema.json uses: type,
// const, enum, required, properties, additionalProperties, items, oneOf, pattern, minimum. The
// schema is ours and small: a general validator (ajv: ~1 MB, code generation) would not earn its keep.

type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Every violation, as `path: what`; empty when `value` fits `schema`. */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  if (schema['type'] !== undefined) {
    const types = ([] as string[]).concat(schema['type'] as string | string[]);
    const t = typeOf(value);
    if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) return [`${path}: is ${t}, not ${types.join('|')}`];
  }
  if ('const' in schema && value !== schema['const']) errors.push(`${path}: is not ${JSON.stringify(schema['const'])}`);
  if (Array.isArray(schema['enum']) && !schema['enum'].includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema['enum'])}`);
  if (typeof schema['pattern'] === 'string' && typeof value === 'string' && !new RegExp(schema['pattern']).test(value)) errors.push(`${path}: does not match ${schema['pattern']}`);
  if (typeof schema['minimum'] === 'number' && typeof value === 'number' && value < schema['minimum']) errors.push(`${path}: below ${schema['minimum']}`);
  if (Array.isArray(schema['oneOf'])) {
    const fits = (schema['oneOf'] as Schema[]).filter((s) => validate(s, value, path).length === 0).length;
    if (fits !== 1) errors.push(`${path}: fits ${fits} of oneOf, not exactly 1`);
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of (schema['required'] as string[] | undefined) ?? []) if (!Object.hasOwn(obj, key)) errors.push(`${path}: lacks ${key}`);
    const props = (schema['properties'] as Record<string, Schema> | undefined) ?? {};
    for (const [key, v] of Object.entries(obj)) {
      if (Object.hasOwn(props, key)) errors.push(...validate(props[key]!, v, `${path}.${key}`));
      else if (schema['additionalProperties'] === false) errors.push(`${path}: ${key} is not allowed`);
      else if (typeof schema['additionalProperties'] === 'object') errors.push(...validate(schema['additionalProperties'] as Schema, v, `${path}.${key}`));
    }
  }
  if (typeOf(value) === 'array' && typeof schema['items'] === 'object') {
    (value as unknown[]).forEach((v, i) => errors.push(...validate(schema['items'] as Schema, v, `${path}[${i}]`)));
  }
  return errors;
}

/**
 * The schema with every `additionalProperties: false` dropped: receivers ignore fields they do not
 * know (fields are added compatibly within a schema version), so a newer agent is not refused.
 */
export function lenient(schema: unknown): Schema {
  if (Array.isArray(schema)) return schema.map(lenient) as unknown as Schema;
  if (schema === null || typeof schema !== 'object') return schema as Schema;
  return Object.fromEntries(Object.entries(schema).filter(([k, v]) => !(k === 'additionalProperties' && v === false)).map(([k, v]) => [k, lenient(v)]));
}

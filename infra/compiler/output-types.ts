/**
 * Typed I/O: checks that each `${steps.X.outputs.Y}` reference gives the parameter it fills the type
 * that parameter takes, from the two declarations (the upstream kind's output type and the consuming
 * kind's `with` schema), as Dagster and Flyte check typed I/O. `validate` then finds what `run` would hit:
 * a value where a file is needed, a file where a folder is needed, a single value where a list of
 * rows is needed.
 */
import { ARTIFACT_KEYWORD, type JsonSchema, type OutputSpec } from '../kinds/descriptor';

/** What a parameter position accepts, as far as the schema tells. */
type Expectation = { any: true } | { artifact: 'file' | 'folder' | 'any' } | { types: Set<string> };

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The sub-schemas that can apply at `path` inside `schema` (following properties, items, combinators). */
export function schemasAt(schema: unknown, path: readonly string[]): JsonSchema[] {
  if (!isObject(schema)) return [{}];
  const branches = [schema];
  for (const key of ['oneOf', 'anyOf', 'allOf']) {
    const list = schema[key];
    if (Array.isArray(list)) for (const s of list) if (isObject(s)) branches.push(s);
  }
  for (const key of ['then', 'else']) if (isObject(schema[key])) branches.push(schema[key]);
  if (path.length === 0) return branches.flatMap((b) => (b === schema ? [b] : schemasAt(b, [])));
  const [head, ...rest] = path as [string, ...string[]];
  const out: JsonSchema[] = [];
  for (const b of branches) {
    if (b !== schema) {
      out.push(...schemasAt(b, path));
      continue;
    }
    const props = b.properties;
    if (isObject(props) && head in props) out.push(...schemasAt(props[head], rest));
    else if (isObject(b.additionalProperties)) out.push(...schemasAt(b.additionalProperties, rest));
    if (/^\d+$/.test(head)) {
      const prefix = b.prefixItems;
      if (Array.isArray(prefix) && Number(head) < prefix.length)
        out.push(...schemasAt(prefix[Number(head)], rest));
      else if (isObject(b.items)) out.push(...schemasAt(b.items, rest));
    }
  }
  return out;
}

function typesOf(schema: JsonSchema): Set<string> | undefined {
  const t = schema.type;
  if (typeof t === 'string') return new Set([t]);
  if (Array.isArray(t)) return new Set(t.filter((x): x is string => typeof x === 'string'));
  const values = Array.isArray(schema.enum) ? schema.enum : 'const' in schema ? [schema.const] : undefined;
  if (values) return new Set(values.map(jsonType));
  return undefined;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function expectation(schema: JsonSchema): Expectation | undefined {
  const artifact = schema[ARTIFACT_KEYWORD];
  if (artifact === 'file' || artifact === 'folder' || artifact === 'any') return { artifact };
  const types = typesOf(schema);
  if (types) return { types };
  // A bare combinator node (oneOf/anyOf/...) says nothing itself; its branches are listed separately.
  if (['oneOf', 'anyOf', 'allOf', 'not'].some((k) => k in schema)) return undefined;
  return { any: true };
}

const describeTypes = (types: Set<string>): string => {
  const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);
  const list = [...types].map((t) => (t === 'array' ? 'a list' : article(t)));
  return list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]!}` : list[0]!;
};

function typesCompatible(have: Set<string>, want: Set<string>): boolean {
  for (const t of have) {
    if (want.has(t)) return true;
    if (t === 'integer' && want.has('number')) return true;
    if (t === 'number' && want.has('integer')) return true;
  }
  return false;
}

/** The value type at a field path inside a value output's schema, when the schema tells. */
function valueTypesAt(spec: OutputSpec, path: readonly string[]): Set<string> | undefined {
  if (!spec.schema) return undefined;
  const found = schemasAt(spec.schema, path).map(typesOf);
  if (found.length === 0 || found.some((t) => t === undefined)) return undefined;
  const all = new Set<string>();
  for (const t of found) for (const x of t!) all.add(x);
  return all;
}

/**
 * Why a reference to `spec` (read at field `path`) cannot fill the parameter at `paramPath` of a kind
 * whose `with` schema is `withSchema`; undefined when it can (or the schemas cannot tell).
 */
export function referenceTypeError(
  withSchema: JsonSchema,
  paramPath: readonly string[],
  spec: OutputSpec,
  path: readonly string[],
): string | undefined {
  const expected = schemasAt(withSchema, paramPath)
    .map(expectation)
    .filter((e): e is Expectation => e !== undefined);
  if (expected.length === 0 || expected.some((e) => 'any' in e)) return undefined;
  const artifactWanted = expected.filter(
    (e): e is { artifact: 'file' | 'folder' | 'any' } => 'artifact' in e,
  );
  const typesWanted = new Set(expected.flatMap((e) => ('types' in e ? [...e.types] : [])));
  const wants = [
    ...new Set(artifactWanted.map((e) => (e.artifact === 'any' ? 'a file or folder' : `a ${e.artifact}`))),
    ...(typesWanted.size ? [describeTypes(typesWanted)] : []),
  ].join(' or ');

  if (spec.type !== 'value') {
    if (
      artifactWanted.some((e) => e.artifact === 'any' || spec.type === 'artifact' || e.artifact === spec.type)
    )
      return undefined;
    if (typesWanted.has('object')) return undefined;
    return `expects ${wants}, but it is a ${spec.type === 'artifact' ? 'file or folder' : spec.type}`;
  }
  const have = valueTypesAt(spec, path);
  if (!have) {
    // An untyped value can still not be an artifact.
    if (artifactWanted.length > 0 && typesWanted.size === 0) return `expects ${wants}, but it is a value`;
    return undefined;
  }
  const nonNull = new Set([...have].filter((t) => t !== 'null'));
  if (nonNull.size === 0 || typesCompatible(nonNull, typesWanted)) return undefined;
  return `expects ${wants}, but it is a value of type ${[...nonNull].join(' or ')}`;
}

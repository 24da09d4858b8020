/**
 * The pipeline compiler: JSON text -> validated {@link Plan}.
 *
 * 1. parse (with positions, duplicate keys rejected) and validate against pipelines/pipeline.schema.json;
 * 2. check what a schema cannot: step kinds, `needs`, templates, `when`/`groupBy` axes, cycles;
 * 3. expand the grid (include/exclude, a cell limit);
 * 4. instantiate every step template per cell (or per group for `groupBy`), resolve its templates,
 *    validate the resolved `with` against the kind's own schema (defaults filled in), and merge
 *    instances that are identical (same kind, same resolved params, same upstream steps) into one
 *    step with a content id, so shared prefixes run once.
 *
 * Every problem found is collected and reported at once as a {@link PipelineInvalidError}.
 */
import { readFile } from 'node:fs/promises';

import pipelineSchema from '../../pipelines/pipeline.schema.json' with { type: 'json' };
import type { KindDescriptor } from '../kinds/descriptor';
import { getKindDescriptor, kindNames } from '../kinds/index';
import { canonicalJson, contentHash, sha256Hex } from '../canonical-json';
import { suggest } from '../did-you-mean';
import type {
  JsonObject,
  JsonValue,
  OutputReference,
  Plan,
  PlannedCell,
  PlannedStep,
  QueueName,
  RetrySpec,
  ToleranceBand,
} from '../../workflows/plan-types';
import { toleranceIssues, type BandStepInfo } from '../drift/tolerance';
import { parseDurationMs } from './duration';
import { referenceTypeError } from './output-types';
import { readScheduleBlock } from './schedule-block';
import { ajv, kindValidator } from './kind-schemas';
import { ajvIssues, PipelineInvalidError, show, type PipelineIssue } from './issues';
import { escapePointerToken, JsonSyntaxError, parseJsonWithPositions, type ParsedJson } from './json-source';
import {
  followPath,
  parseTemplate,
  TemplateSyntaxError,
  type ParsedTemplate,
  type TemplateRef,
} from './templates';

/** Default limit on the number of grid cells (`--max-cells` raises it). */
export const DEFAULT_MAX_CELLS = 10_000;

/** Step defaults when neither the kind nor the pipeline sets them. */
export const STEP_DEFAULTS = {
  timeoutMs: 3_600_000,
  heartbeatTimeoutMs: 30_000,
  retry: {
    maxAttempts: 3,
    initialIntervalMs: 1000,
    backoffCoefficient: 2,
    maxIntervalMs: 60_000,
  } satisfies RetrySpec,
};

export interface CompileOptions {
  /** File name used in messages. */
  file?: string;
  /** Refuse grids with more cells than this. @default 10000 */
  maxCells?: number;
  /** Step kind lookup. @default the descriptors in infra/kinds */
  kinds?: { get(name: string): KindDescriptor<unknown> | undefined; names(): string[] };
}

type AnyKind = KindDescriptor<unknown>;
const defaultKinds = {
  get: (n: string) => getKindDescriptor(n) as AnyKind | undefined,
  names: kindNames,
};

const validatePipelineShape = ajv.compile(pipelineSchema);

/** Compile a pipeline file. */
export async function compilePipelineFile(path: string, options: CompileOptions = {}): Promise<Plan> {
  const text = await readFile(path, 'utf8');
  return compilePipeline(text, { file: path, ...options });
}

/** Compile pipeline JSON text; throws {@link PipelineInvalidError} listing every problem. */
export function compilePipeline(text: string, options: CompileOptions = {}): Plan {
  const file = options.file ?? '<pipeline>';
  let parsed: ParsedJson;
  try {
    parsed = parseJsonWithPositions(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) {
      throw new PipelineInvalidError(file, [
        { message: `malformed JSON: ${err.message}`, position: err.position },
      ]);
    }
    throw err;
  }
  const compiler = new Compiler(parsed, options.kinds ?? defaultKinds, options.maxCells ?? DEFAULT_MAX_CELLS);
  const plan = compiler.run();
  if (compiler.issues.length > 0 || !plan) {
    const issues = compiler.issues.map((i) => ({
      ...i,
      position: i.position ?? (i.pointer !== undefined ? positionFor(parsed, i.pointer) : undefined),
    }));
    throw new PipelineInvalidError(file, issues);
  }
  return plan;
}

function positionFor(parsed: ParsedJson, pointer: string) {
  // The nearest enclosing value that has a recorded position.
  let p = pointer;
  for (;;) {
    const pos = parsed.positions.get(p);
    if (pos) return pos;
    if (p === '') return undefined;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

// ---------------------------------------------------------------------------------------------------------

/** A step template as written, checked, with what it references. */
interface StepTemplate {
  id: string;
  pointer: string;
  kind: AnyKind;
  raw: JsonObject;
  /** Template ids it depends on: explicit `needs` plus steps referenced in templates. */
  deps: string[];
  axes: string[];
  usesCellId: boolean;
  when: Array<{ axis: string; keys: Set<string> }>;
  groupBy?: string[];
  queue: QueueName;
  retry: RetrySpec;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  cache: boolean;
}

interface Cell {
  id: string;
  values: Record<string, JsonValue>;
  /** Canonical JSON of each axis value ('' when the cell has none). */
  keys: Map<string, string>;
}

/** Resolution context of one step instance. */
interface Scope {
  value(axis: string): JsonValue | undefined;
  cellId: string;
  step(dep: string): OutputReferenceTarget;
}
/** What `${steps.X.outputs.Y}` reads as: one upstream step, none (left out by `when`), or a group's list. */
type OutputReferenceTarget =
  | { kind: 'one'; key: string }
  | { kind: 'none' }
  | { kind: 'list'; items: Array<{ cell: Cell; key: string }> };

class ResolveError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
  ) {
    super(message);
  }
}

const PENDING_DIGEST = `sha256:${'0'.repeat(64)}`;

class Compiler {
  readonly issues: PipelineIssue[] = [];
  private readonly issueKeys = new Set<string>();
  /**
   * Validated `with`s by "shape" (template, axis values, which dependencies exist): instances with the
   * same shape differ only in the upstream keys inside their references, so one resolution, validation
   * and serialisation serves them all.
   */
  private readonly shapes = new Map<string, StepShape>();
  private doc: Record<string, unknown> = {};
  private axes: string[] = [];
  private axisValues = new Map<string, Set<string>>();
  private params: Record<string, unknown> = {};
  private templates = new Map<string, StepTemplate>();
  /** Templates with problems: not instantiated, nor is anything that needs them. */
  private bad = new Set<string>();

  constructor(
    private readonly parsed: ParsedJson,
    private readonly kinds: NonNullable<CompileOptions['kinds']>,
    private readonly maxCells: number,
  ) {}

  private issue(pointer: string, message: string): void {
    const key = `${pointer}\u0000${message}`;
    if (this.issueKeys.has(key)) return;
    this.issueKeys.add(key);
    this.issues.push({ pointer, message });
  }

  /**
   * A problem that may repeat in many cells is reported once per place, naming the first cell and
   * counting the other cells with a problem there.
   */
  private readonly cellIssues = new Map<
    string,
    { issue: PipelineIssue; message: string; where: string; others: number }
  >();
  private cellIssue(pointer: string, message: string, where: string): void {
    const seen = this.cellIssues.get(pointer);
    if (seen && where && seen.where !== where) {
      seen.others++;
      seen.issue.message = `${seen.message} (${seen.where}; also in ${seen.others} other cell${seen.others === 1 ? '' : 's'})`;
      return;
    }
    if (seen) {
      this.issue(pointer, where ? `${message} (${where})` : message);
      return;
    }
    const issue = { pointer, message: where ? `${message} (${where})` : message };
    this.cellIssues.set(pointer, { issue, message, where, others: 0 });
    this.issueKeys.add(`${pointer}\u0000${issue.message}`);
    this.issues.push(issue);
  }

  run(): Plan | undefined {
    const { value, duplicates } = this.parsed;
    for (const d of duplicates) {
      this.issues.push({
        pointer: d.pointer,
        message: `duplicate key "${d.key}" (first defined at line ${d.first.line}:${d.first.column})${d.pointer.startsWith('/steps/') && d.pointer.split('/').length === 3 ? ': step ids must be unique' : ''}`,
        position: d.position,
      });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.issue(
        '',
        `the pipeline must be a JSON object, found ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
      );
      return undefined;
    }
    this.doc = value as Record<string, unknown>;
    // ajv fills in schema defaults; validate a copy so the document's digest is of what was written.
    const shapeOk = validatePipelineShape(structuredClone(this.doc));
    if (!shapeOk) {
      for (const i of ajvIssues(validatePipelineShape.errors ?? [], '')) {
        this.issue(i.pointer!, i.message);
        // A step that is malformed is not instantiated (its parameter errors would only be noise).
        const m = /^\/steps\/([^/]+)/.exec(i.pointer!);
        if (m) this.bad.add(m[1]!.replace(/~1/g, '/').replace(/~0/g, '~'));
      }
    }

    // The schedule block's own checks (cron, time zone), where the schema found nothing wrong.
    const schedule = isObject(this.doc.schedule)
      ? readScheduleBlock(
          this.doc.schedule,
          String(this.doc.name),
          (p, m) => this.issue(p, m),
          new Set(this.issues.flatMap((i) => (i.pointer?.startsWith('/schedule') ? [i.pointer] : []))),
        )
      : undefined;

    const grid = isObject(this.doc.grid) ? this.doc.grid : {};
    this.params = isObject(this.doc.params) ? this.doc.params : {};
    this.collectAxes(grid);
    const steps = isObject(this.doc.steps) ? this.doc.steps : {};
    for (const [id, raw] of Object.entries(steps)) {
      const before = this.issues.length;
      this.checkTemplate(id, raw);
      if (this.issues.length > before) this.bad.add(id);
    }
    for (const i of toleranceIssues(this.doc.tolerance, this.bandSteps())) this.issue(i.pointer, i.message);
    const order = this.orderTemplates();
    if (!order) return undefined;
    const before = this.issues.length;
    const cells = this.expandGrid(grid);
    if (this.issues.length > before || !cells) return undefined;
    // Instantiate even when some templates had problems, so that parameter errors of the others are
    // reported in the same run; steps that are broken, or need broken steps, are skipped.
    const plan = this.instantiate(cells, order);
    if (plan && schedule) plan.pipeline.schedule = schedule;
    return this.issues.length > 0 ? undefined : plan;
  }

  /** Each well-formed template's outputs, for checking the metric names of tolerance bands. */
  private bandSteps(): Map<string, BandStepInfo> {
    const steps = new Map<string, BandStepInfo>();
    for (const [id, t] of this.templates)
      steps.set(id, {
        outputs: Object.fromEntries(Object.entries(t.kind.outputs).map(([name, spec]) => [name, spec.type])),
      });
    return steps;
  }

  // --- axes and templates ---------------------------------------------------------------------------

  private collectAxes(grid: Record<string, unknown>): void {
    for (const [axis, values] of Object.entries(grid)) {
      this.axes.push(axis);
      const keys = new Set<string>();
      const labels = new Map<string, number>();
      if (Array.isArray(values)) {
        values.forEach((v, i) => {
          keys.add(canonicalJson(v));
          const label = valueLabel(v as JsonValue);
          const first = labels.get(label);
          if (first !== undefined && canonicalJson(values[first]) !== canonicalJson(v)) {
            this.issue(
              `/grid/${escapePointerToken(axis)}/${i}`,
              `two values of axis "${axis}" are both called "${label}"; cell ids need distinct names`,
            );
          }
          labels.set(label, i);
        });
      }
      this.axisValues.set(axis, keys);
    }
    const include = Array.isArray(this.doc.include) ? this.doc.include : [];
    for (const entry of include) {
      if (!isObject(entry)) continue;
      for (const [axis, v] of Object.entries(entry)) {
        if (!this.axisValues.has(axis)) {
          this.axes.push(axis);
          this.axisValues.set(axis, new Set());
        }
        this.axisValues.get(axis)!.add(canonicalJson(v));
      }
    }
  }

  private checkTemplate(id: string, raw: unknown): void {
    if (!isObject(raw) || typeof raw.uses !== 'string') return; // the schema already reported it
    const pointer = `/steps/${escapePointerToken(id)}`;
    const kind = this.kinds.get(raw.uses);
    if (!kind) {
      const hint = suggest(raw.uses, this.kinds.names());
      this.issue(
        `${pointer}/uses`,
        `unknown step kind "${raw.uses}"${hint ? ` (did you mean "${hint}"?)` : ''}; see \`ablate kinds\` for the list`,
      );
      return;
    }
    const stepIds = Object.keys(isObject(this.doc.steps) ? this.doc.steps : {});
    const deps: string[] = [];
    const needs = Array.isArray(raw.needs) ? raw.needs : [];
    needs.forEach((n, i) => {
      if (typeof n !== 'string') return;
      if (!stepIds.includes(n)) {
        const hint = suggest(n, stepIds);
        this.issue(
          `${pointer}/needs/${i}`,
          `needs unknown step "${n}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        );
      } else if (!deps.includes(n)) deps.push(n);
    });

    const groupBy = Array.isArray(raw.groupBy)
      ? raw.groupBy.filter((a): a is string => typeof a === 'string')
      : undefined;
    groupBy?.forEach((axis, i) => this.checkAxis(axis, `${pointer}/groupBy/${i}`));

    const axes = new Set<string>();
    let usesCellId = false;
    const withRaw = isObject(raw.with) ? (raw.with as JsonObject) : {};
    walkStrings(withRaw, `${pointer}/with`, (text, at) => {
      let parsed: ParsedTemplate | undefined;
      try {
        parsed = parseTemplate(text);
      } catch (err) {
        if (err instanceof TemplateSyntaxError) this.issue(at, err.message);
        return;
      }
      if (!parsed) return;
      for (const part of parsed.parts) {
        if (part.kind !== 'ref') continue;
        const ref = part.ref;
        if (ref.scope === 'grid') {
          if (this.checkAxis(ref.axis, at, part.source)) {
            if (groupBy && !groupBy.includes(ref.axis)) {
              this.issue(
                at,
                `${part.source}: a groupBy step can only read its groupBy axes (${groupBy.join(', ') || 'none'})`,
              );
            }
            axes.add(ref.axis);
          }
        } else if (ref.scope === 'params') {
          if (!Object.prototype.hasOwnProperty.call(this.params, ref.name)) {
            const hint = suggest(ref.name, Object.keys(this.params));
            this.issue(
              at,
              `${part.source}: unknown param "${ref.name}"${hint ? ` (did you mean "${hint}"?)` : ''}; define it under "params"`,
            );
          } else if (followPath(this.params[ref.name], ref.path) === undefined) {
            this.issue(at, `${part.source}: params.${ref.name} has no field "${ref.path.join('.')}"`);
          }
        } else if (ref.scope === 'steps') {
          this.checkStepRef(ref, at, part.source, id, stepIds, parsed.isWhole, groupBy !== undefined);
          if (stepIds.includes(ref.step) && ref.step !== id && !deps.includes(ref.step)) deps.push(ref.step);
          if (ref.step === id) this.issue(at, `${part.source}: a step cannot read its own outputs`);
        } else if (ref.scope === 'cell') {
          if (groupBy) this.issue(at, `${part.source}: a groupBy step has no single cell`);
          usesCellId = true;
        }
      }
    });

    const when: StepTemplate['when'] = [];
    if (isObject(raw.when)) {
      for (const [axis, v] of Object.entries(raw.when)) {
        const at = `${pointer}/when/${escapePointerToken(axis)}`;
        if (!this.checkAxis(axis, at)) continue;
        const wanted = Array.isArray(v) ? v : [v];
        const keys = new Set<string>();
        for (const w of wanted) {
          const key = this.axisValueKey(axis, w);
          const known = this.axisValues.get(axis)!;
          if (!known.has(key)) {
            const labels = [...known].map((k) => valueLabel(JSON.parse(k) as JsonValue));
            const hint = typeof w === 'string' ? suggest(w, labels) : undefined;
            this.issue(
              at,
              `${show(w)} is not a value of axis "${axis}" (values: ${labels.map((l) => JSON.stringify(l)).join(', ')})${hint ? `; did you mean "${hint}"?` : ''}`,
            );
          }
          keys.add(key);
        }
        when.push({ axis, keys });
      }
    }

    const timeoutMs =
      raw.timeout === undefined
        ? (kind.defaults?.timeoutMs ?? STEP_DEFAULTS.timeoutMs)
        : parseDurationMs(raw.timeout);
    const heartbeatTimeoutMs =
      raw.heartbeatTimeout === undefined
        ? (kind.defaults?.heartbeatTimeoutMs ?? STEP_DEFAULTS.heartbeatTimeoutMs)
        : parseDurationMs(raw.heartbeatTimeout);
    this.templates.set(id, {
      id,
      pointer,
      kind,
      raw: withRaw,
      deps,
      axes: [...axes],
      usesCellId,
      when,
      groupBy,
      queue: raw.queue === 'gpu' || raw.queue === 'cpu' ? raw.queue : kind.queue,
      retry: resolveRetry(raw.retry, kind),
      timeoutMs: timeoutMs ?? STEP_DEFAULTS.timeoutMs,
      heartbeatTimeoutMs: heartbeatTimeoutMs ?? STEP_DEFAULTS.heartbeatTimeoutMs,
      cache: raw.cache !== false,
    });
  }

  /**
   * The canonical key of a value of `axis` as written in `when` / `exclude`: an object value can also be
   * named by its `name` (`"data": "10k"` for `{"name": "10k", "images": 10000}`).
   */
  private axisValueKey(axis: string, value: unknown): string {
    const key = canonicalJson(value);
    const known = this.axisValues.get(axis);
    if (!known || known.has(key) || typeof value !== 'string') return key;
    for (const k of known) {
      const v = JSON.parse(k) as unknown;
      if (isObject(v) && v.name === value) return k;
    }
    return key;
  }

  private checkAxis(axis: string, at: string, source?: string): boolean {
    if (this.axisValues.has(axis)) return true;
    const hint = suggest(axis, this.axes);
    const what = source ? `${source}: unknown axis "${axis}"` : `unknown axis "${axis}"`;
    this.issue(
      at,
      `${what}${hint ? ` (did you mean "${hint}"?)` : ''}; the grid has ${this.axes.length ? this.axes.join(', ') : 'no axes'}`,
    );
    return false;
  }

  private checkStepRef(
    ref: Extract<TemplateRef, { scope: 'steps' }>,
    at: string,
    source: string,
    selfId: string,
    stepIds: string[],
    isWhole: boolean,
    inGroupBy: boolean,
  ): void {
    if (!stepIds.includes(ref.step)) {
      const hint = suggest(ref.step, stepIds);
      this.issue(at, `${source}: unknown step "${ref.step}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      return;
    }
    if (ref.step === selfId) return;
    const raw = (this.doc.steps as Record<string, unknown>)[ref.step];
    const upstream = isObject(raw) && typeof raw.uses === 'string' ? this.kinds.get(raw.uses) : undefined;
    if (!upstream) return; // reported on that step
    const spec = upstream.outputs[ref.output];
    if (!spec) {
      const names = Object.keys(upstream.outputs);
      const hint = suggest(ref.output, names);
      this.issue(
        at,
        `${source}: step "${ref.step}" (${upstream.name}) has no output "${ref.output}"${hint ? ` (did you mean "${hint}"?)` : ''}; its outputs: ${names.join(', ')}`,
      );
      return;
    }
    if (!isWhole) this.issue(at, `${source}: an output reference must be the whole string, not part of one`);
    if (spec.type !== 'value' && ref.path.length > 0) {
      this.issue(
        at,
        `${source}: "${ref.output}" is a ${spec.type}; fields of artifacts cannot be read in templates`,
      );
    }
    if (inGroupBy && ref.path.length > 0)
      this.issue(at, `${source}: in a groupBy step an output reads as a list; no field path allowed`);
  }

  /** Template ids in dependency order; reports a cycle and returns undefined if there is one. */
  private orderTemplates(): string[] | undefined {
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    let cycle: string[] | undefined;
    const visit = (id: string): void => {
      if (cycle) return;
      const s = state.get(id);
      if (s === 'done') return;
      if (s === 'visiting') {
        cycle = [...stack.slice(stack.indexOf(id)), id];
        return;
      }
      state.set(id, 'visiting');
      stack.push(id);
      for (const dep of this.templates.get(id)?.deps ?? []) if (this.templates.has(dep)) visit(dep);
      stack.pop();
      state.set(id, 'done');
      order.push(id);
    };
    for (const id of this.templates.keys()) visit(id);
    if (cycle) {
      // Print the cycle in the direction of the dataflow: a -> b means b needs a.
      const flow = [...cycle].reverse();
      this.issue(`/steps/${escapePointerToken(cycle[0]!)}/needs`, `dependency cycle: ${flow.join(' -> ')}`);
      return undefined;
    }
    return order;
  }

  // --- grid -----------------------------------------------------------------------------------------

  private expandGrid(grid: Record<string, unknown>): Cell[] | undefined {
    const gridAxes = Object.keys(grid).filter((a) => Array.isArray(grid[a]));
    const lists = gridAxes.map((a) => grid[a] as JsonValue[]);
    const product = lists.reduce((n, l) => n * l.length, 1);
    if (product > this.maxCells) {
      this.issue(
        '/grid',
        `the grid has ${product.toLocaleString('en-US')} cells (${lists.map((l) => l.length).join(' x ')}), over the limit of ${this.maxCells.toLocaleString('en-US')}; raise it with --max-cells if you mean it`,
      );
      return undefined;
    }
    const exclude = (Array.isArray(this.doc.exclude) ? this.doc.exclude : []).filter(isObject);
    exclude.forEach((entry, i) => {
      for (const axis of Object.keys(entry))
        this.checkAxis(axis, `/exclude/${i}/${escapePointerToken(axis)}`);
    });
    const excludeMatchers = exclude.map((entry) =>
      Object.entries(entry).map(([axis, v]) => ({
        axis,
        keys: new Set((Array.isArray(v) ? v : [v]).map((x) => this.axisValueKey(axis, x))),
      })),
    );
    const cells: Cell[] = [];
    const seen = new Set<string>();
    const addCell = (values: Record<string, JsonValue>): void => {
      const cell = makeCell(values, this.axes);
      const identity = this.axes.map((a) => cell.keys.get(a) ?? '').join('\u0001');
      if (seen.has(identity)) return;
      seen.add(identity);
      cells.push(cell);
    };
    const idx = new Array<number>(lists.length).fill(0);
    const gridCells: Cell[] = [];
    for (let n = 0; n < product; n++) {
      const values: Record<string, JsonValue> = {};
      gridAxes.forEach((a, k) => (values[a] = lists[k]![idx[k]!]!));
      const cell = makeCell(values, this.axes);
      const excluded = excludeMatchers.some((m) =>
        m.every(({ axis, keys }) => keys.has(cell.keys.get(axis) ?? '')),
      );
      if (!excluded) gridCells.push(cell);
      for (let k = lists.length - 1; k >= 0; k--) {
        idx[k]!++;
        if (idx[k]! < lists[k]!.length) break;
        idx[k] = 0;
      }
    }
    if (gridAxes.length === 0) gridCells.length = 0;
    if (gridAxes.length === 0 && !Array.isArray(this.doc.include)) gridCells.push(makeCell({}, this.axes));
    // include: extend matching grid cells with extra keys, or add a new cell (CI build-matrix rules).
    const extended = gridCells.map((c) => ({ ...c.values }));
    const include = (Array.isArray(this.doc.include) ? this.doc.include : []).filter(isObject) as Array<
      Record<string, JsonValue>
    >;
    const extra: Array<Record<string, JsonValue>> = [];
    for (const entry of include) {
      let matched = false;
      gridCells.forEach((cell, k) => {
        const conflicts = Object.entries(entry).some(
          ([axis, v]) => gridAxes.includes(axis) && cell.keys.get(axis) !== canonicalJson(v),
        );
        if (conflicts) return;
        const overwrites = Object.entries(entry).some(
          ([axis, v]) =>
            extended[k]![axis] !== undefined && canonicalJson(extended[k]![axis]) !== canonicalJson(v),
        );
        if (overwrites) return;
        Object.assign(extended[k]!, entry);
        matched = true;
      });
      if (!matched) extra.push(entry);
    }
    for (const values of extended) addCell(values);
    for (const values of extra) addCell(values);
    if (cells.length === 0) {
      this.issue(
        Array.isArray(this.doc.exclude) ? '/exclude' : '/grid',
        'the grid is empty: exclude removed every cell',
      );
      return undefined;
    }
    if (cells.length > this.maxCells) {
      this.issue(
        '/include',
        `the grid has ${cells.length} cells with include, over the limit of ${this.maxCells}; raise it with --max-cells`,
      );
      return undefined;
    }
    return cells;
  }

  // --- instantiation ----------------------------------------------------------------------------------

  private instantiate(cells: Cell[], order: string[]): Plan | undefined {
    const steps = new Map<string, PlannedStep & { cellIdx: number[] }>();
    const cellSteps: Array<Map<string, string>> = cells.map(() => new Map<string, string>());
    const memo = new Map<string, string>();
    let instances = 0;

    const addStep = (
      t: StepTemplate,
      key: string,
      withParams: () => JsonObject,
      needList: string[],
    ): void => {
      const existing = steps.get(key);
      if (existing) {
        if (!existing.ids.includes(t.id)) existing.ids.push(t.id);
        return;
      }
      steps.set(key, {
        key,
        id: t.id,
        ids: [t.id],
        uses: t.kind.name,
        with: withParams(),
        needs: needList,
        queue: t.queue,
        retry: t.retry,
        timeoutMs: t.timeoutMs,
        heartbeatTimeoutMs: t.heartbeatTimeoutMs,
        cache: t.cache,
        cells: [],
        label: t.id,
        cellIdx: [],
      });
    };
    const needsOf = (t: StepTemplate, scope: Scope): string[] => {
      const needs = new Set<string>();
      for (const dep of t.deps) {
        const target = scope.step(dep);
        if (target.kind === 'one') needs.add(target.key);
        else if (target.kind === 'list') for (const item of target.items) needs.add(item.key);
      }
      return [...needs].sort();
    };

    const register = (
      t: StepTemplate,
      scope: Scope,
      signature: string,
      cellLabel: string,
      shape?: string,
    ): string | undefined => {
      const cachedKey = memo.get(signature);
      if (cachedKey !== undefined) return cachedKey;
      const known = shape === undefined ? undefined : this.shapes.get(shape);
      if (known) {
        // Same shape as a step already validated: only the upstream keys differ. Build the canonical
        // JSON from the stored pieces instead of resolving, validating and serialising again.
        const refKeys = known.refs.map((r) => (scope.step(r.dep) as { key: string }).key);
        const needList = needsOf(t, scope);
        const key = stepKey(t.kind.name, needList, assembleCanonical(known, refKeys));
        memo.set(signature, key);
        addStep(t, key, () => instantiateShape(known, refKeys), needList);
        return key;
      }
      let resolved: JsonObject;
      try {
        resolved = this.resolve(t.raw, `${t.pointer}/with`, scope) as JsonObject;
      } catch (err) {
        if (err instanceof ResolveError) {
          this.cellIssue(err.pointer, err.message, cellLabel);
          return undefined;
        }
        throw err;
      }
      const validated = this.validateWith(t, resolved, steps, cellLabel);
      if (!validated) return undefined;
      const withParams = validated.params;
      const needList = needsOf(t, scope);
      const key = stepKey(t.kind.name, needList, canonicalJson(withParams));
      if (shape !== undefined) {
        const made = makeShape(t, scope, withParams, validated.refs);
        if (made) this.shapes.set(shape, made);
      }
      memo.set(signature, key);
      addStep(t, key, () => withParams, needList);
      return key;
    };

    for (const id of order) {
      const t = this.templates.get(id);
      if (!t || this.bad.has(id) || t.deps.some((d) => this.bad.has(d) || !this.templates.has(d))) {
        this.bad.add(id);
        continue;
      }
      const matching: number[] = [];
      cells.forEach((cell, c) => {
        if (t.when.every(({ axis, keys }) => keys.has(cell.keys.get(axis) ?? ''))) matching.push(c);
      });
      if (t.groupBy) {
        const groups = new Map<string, number[]>();
        for (const c of matching) {
          const sig = t.groupBy.map((a) => cells[c]!.keys.get(a) ?? '').join('\u0001');
          let g = groups.get(sig);
          if (!g) groups.set(sig, (g = []));
          g.push(c);
        }
        for (const [sig, members] of groups) {
          const first = cells[members[0]!]!;
          const scope: Scope = {
            value: (axis) => first.values[axis],
            cellId: '',
            step: (dep) => {
              const items = members.flatMap((c) => {
                const key = cellSteps[c]!.get(dep);
                return key === undefined ? [] : [{ cell: cells[c]!, key }];
              });
              // Another groupBy step that this whole group shares (e.g. both group over the same
              // axes) reads as its one value, not as a list of the same value per cell.
              const keys = new Set(items.map((i) => i.key));
              return this.templates.get(dep)?.groupBy && keys.size === 1
                ? { kind: 'one', key: items[0]!.key }
                : { kind: 'list', items };
            },
          };
          const signature = `${id}\u0002group\u0002${sig}`;
          const label = t.groupBy.length
            ? `in group ${t.groupBy.map((a) => `${a}=${valueLabel(first.values[a])}`).join(',')}`
            : '';
          const key = register(t, scope, signature, label);
          if (key === undefined) continue;
          for (const c of members) {
            cellSteps[c]!.set(id, key);
            steps.get(key)!.cellIdx.push(c);
          }
          instances++;
        }
        continue;
      }
      for (const c of matching) {
        const cell = cells[c]!;
        let shape = id;
        for (const axis of t.axes) shape += `\u0001${cell.keys.get(axis) ?? ''}`;
        if (t.usesCellId) shape += `\u0001${cell.id}`;
        let signature = shape;
        for (const dep of t.deps) {
          const up = cellSteps[c]!.get(dep);
          signature += `\u0001${up ?? '-'}`;
          shape += up === undefined ? '\u0001-' : '\u0001+';
        }
        // Most instances repeat an earlier resolution (same axis values and upstream steps): no scope needed.
        const key =
          memo.get(signature) ??
          register(t, new CellScope(cell, cellSteps[c]!), signature, `in cell ${cell.id}`, shape);
        if (key === undefined) continue;
        cellSteps[c]!.set(id, key);
        steps.get(key)!.cellIdx.push(c);
        instances++;
      }
      if (this.issues.length > 100) break;
    }
    const planned: PlannedStep[] = [];
    for (const s of steps.values()) {
      const { cellIdx, ...step } = s;
      step.cells = cellIdx.map((c) => cells[c]!.id);
      step.label = labelFor(
        step.id,
        cellIdx.map((c) => cells[c]!),
        this.axes,
      );
      planned.push(step);
    }
    const plannedCells: PlannedCell[] = cells.map((cell, c) => ({
      id: cell.id,
      values: cell.values,
      steps: Object.fromEntries(cellSteps[c]!),
    }));
    const axes: Record<string, JsonValue[]> = {};
    for (const axis of this.axes)
      axes[axis] = [...this.axisValues.get(axis)!].map((k) => JSON.parse(k) as JsonValue);
    return {
      version: 1,
      pipeline: {
        name: typeof this.doc.name === 'string' ? this.doc.name : '',
        description: typeof this.doc.description === 'string' ? this.doc.description : '',
        digest: `sha256:${contentHash(this.doc)}`,
      },
      axes,
      ...(Array.isArray(this.doc.tolerance) ? { tolerance: this.doc.tolerance as ToleranceBand[] } : {}),
      cells: plannedCells,
      steps: planned,
      stats: {
        cells: cells.length,
        stepInstances: instances,
        uniqueSteps: planned.length,
        saved: instances - planned.length,
      },
    };
  }

  /** Resolve the templates of a `with` value for one instance. */
  private resolve(value: unknown, pointer: string, scope: Scope): JsonValue {
    if (typeof value === 'string') return this.resolveString(value, pointer, scope);
    if (Array.isArray(value)) return value.map((v, i) => this.resolve(v, `${pointer}/${i}`, scope));
    if (isObject(value)) {
      const out: JsonObject = {};
      for (const [k, v] of Object.entries(value))
        out[k] = this.resolve(v, `${pointer}/${escapePointerToken(k)}`, scope);
      return out;
    }
    return value as JsonValue;
  }

  private readonly parsedTemplates = new Map<string, ParsedTemplate | undefined>();

  private resolveString(text: string, pointer: string, scope: Scope): JsonValue {
    let parsed = this.parsedTemplates.get(text);
    if (parsed === undefined && !this.parsedTemplates.has(text)) {
      parsed = parseTemplate(text);
      this.parsedTemplates.set(text, parsed);
    }
    if (!parsed) return text;
    const values = parsed.parts.map((part) =>
      part.kind === 'literal' ? part.text : this.resolveRef(part.ref, part.source, pointer, scope),
    );
    if (parsed.isWhole) return values[0]!;
    return values
      .map((v, i) => {
        if (parsed.parts[i]!.kind === 'literal') return v as string;
        if (v !== null && typeof v === 'object') {
          throw new ResolveError(
            pointer,
            `${(parsed.parts[i] as { source: string }).source} is ${show(v)}: an object or list cannot be part of a string`,
          );
        }
        return String(v);
      })
      .join('');
  }

  private resolveRef(ref: TemplateRef, source: string, pointer: string, scope: Scope): JsonValue {
    switch (ref.scope) {
      case 'grid': {
        const v = scope.value(ref.axis);
        if (v === undefined)
          throw new ResolveError(pointer, `${source}: this cell has no value for axis "${ref.axis}"`);
        const at = followPath(v, ref.path);
        if (at === undefined)
          throw new ResolveError(
            pointer,
            `${source}: the value ${show(v)} of axis "${ref.axis}" has no field "${ref.path.join('.')}"`,
          );
        return at as JsonValue;
      }
      case 'params':
        return followPath(this.params[ref.name], ref.path) as JsonValue;
      case 'cell':
        return scope.cellId;
      case 'pipeline':
        return typeof this.doc.name === 'string' ? this.doc.name : '';
      case 'steps': {
        const target = scope.step(ref.step);
        const from = (key: string): JsonObject => ({
          $from: { step: key, output: ref.output, ...(ref.path.length ? { path: ref.path } : {}) },
        });
        if (target.kind === 'none') return null;
        if (target.kind === 'one') return from(target.key);
        return target.items.map(({ cell, key }) => ({ cell: cell.values, value: from(key) }));
      }
    }
  }

  /**
   * Validate a resolved `with` against its kind's schema. Output references are replaced by typed
   * placeholders for the check (an artifact reference for artifact outputs; value outputs are unknown
   * until run time, so errors at their place are not reported). Returns `with` with defaults filled in.
   */
  private validateWith(
    t: StepTemplate,
    resolved: JsonObject,
    steps: Map<string, PlannedStep>,
    cellLabel: string,
  ): { params: JsonObject; refs: Array<{ path: string[]; ref: JsonObject }> } | undefined {
    const refs: Array<{ path: string[]; ref: JsonObject }> = [];
    const ignored: string[] = [];
    const typeErrors: Array<{ pointer: string; message: string }> = [];
    const placeholder = (v: JsonValue, path: string[]): JsonValue => {
      if (isOutputReference(v)) {
        refs.push({ path, ref: v as JsonObject });
        const upstream = steps.get(v.$from.step);
        const spec = upstream ? this.kinds.get(upstream.uses)?.outputs[v.$from.output] : undefined;
        const problem = spec && referenceTypeError(t.kind.withSchema, path, spec, v.$from.path ?? []);
        if (problem) {
          const field = [v.$from.output, ...(v.$from.path ?? [])].join('.');
          const wantsList = problem.startsWith('expects a list') && !t.groupBy;
          typeErrors.push({
            pointer: `${t.pointer}/with/${path.map(escapePointerToken).join('/')}`,
            message:
              `\${steps.${upstream!.id}.outputs.${field}}: ${t.kind.name} ${problem}` +
              (wantsList
                ? ' (hint: in a step with groupBy, an output reads as a list of {cell, value})'
                : ''),
          });
        }
        if (spec && spec.type !== 'value' && !v.$from.path && !problem) {
          return {
            uri: 'pending:',
            digest: PENDING_DIGEST,
            sizeBytes: 0,
            mediaType: spec.mediaType ?? 'application/octet-stream',
          };
        }
        ignored.push(`/${path.map(escapePointerToken).join('/')}`);
        return null;
      }
      if (Array.isArray(v)) return v.map((x, i) => placeholder(x, [...path, String(i)]));
      if (isObject(v)) {
        const out: JsonObject = {};
        for (const [k, x] of Object.entries(v)) out[k] = placeholder(x, [...path, k]);
        return out;
      }
      return v;
    };
    const candidate = placeholder(resolved, []) as JsonObject;
    if (typeErrors.length > 0) {
      const where = t.axes.length || t.deps.length || t.usesCellId ? cellLabel : '';
      for (const e of typeErrors) this.cellIssue(e.pointer, e.message, where);
      return undefined;
    }
    const validate = kindValidator(t.kind);
    if (!validate(candidate)) {
      const errors = (validate.errors ?? []).filter(
        (e) => !ignored.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`)),
      );
      if (errors.length > 0) {
        for (const i of ajvIssues(errors, `${t.pointer}/with`)) {
          this.cellIssue(
            i.pointer!,
            i.message,
            t.axes.length || t.deps.length || t.usesCellId ? cellLabel : '',
          );
        }
        return undefined;
      }
    }
    // Put the references back where the placeholders were.
    for (const { path, ref } of refs) {
      if (path.length === 0) return { params: ref, refs };
      setAt(candidate, path, ref);
    }
    return { params: candidate, refs };
  }
}

/** A validated `with` whose instances differ only in the upstream keys of their references. */
interface StepShape {
  /** The validated parameters (defaults filled in), references included. */
  params: JsonObject;
  refs: Array<{ path: string[]; dep: string }>;
  /** Canonical JSON of `params`, cut where each reference's step key goes. */
  parts: string[];
  /** `order[i]`: the reference whose key goes between parts[i] and parts[i + 1]. */
  order: number[];
}

const KEY_MARK = `\uE000ablate-ref-${Math.random().toString(36).slice(2)}-`;

/** The step's content id: the first 16 hex of the sha256 of the canonical JSON of {uses, with, needs}. */
function stepKey(uses: string, needs: string[], withCanonical: string): string {
  // Keys in canonical (sorted) order: needs, uses, with.
  return sha256Hex(
    `{"needs":${canonicalJson(needs)},"uses":${JSON.stringify(uses)},"with":${withCanonical}}`,
  ).slice(0, 16);
}

function makeShape(
  t: StepTemplate,
  scope: Scope,
  params: JsonObject,
  refs: Array<{ path: string[]; ref: JsonObject }>,
): StepShape | undefined {
  if (refs.some((r) => r.path.length === 0)) return undefined;
  const depOfKey = new Map<string, string>();
  for (const dep of t.deps) {
    const target = scope.step(dep);
    if (target.kind === 'one') depOfKey.set(target.key, dep);
  }
  const shapeRefs: StepShape['refs'] = [];
  const marked = cloneJson(params) as JsonObject;
  for (const [i, { path, ref }] of refs.entries()) {
    const from = (ref as unknown as OutputReference).$from;
    const dep = depOfKey.get(from.step);
    if (dep === undefined) return undefined;
    shapeRefs.push({ path, dep });
    setAt(marked, path, { $from: { ...from, step: `${KEY_MARK}${i}` } });
  }
  const pieces = canonicalJson(marked).split(
    new RegExp(`"${KEY_MARK.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)"`),
  );
  const parts: string[] = [];
  const order: number[] = [];
  pieces.forEach((piece, i) => (i % 2 === 0 ? parts.push(piece) : order.push(Number(piece))));
  return { params, refs: shapeRefs, parts, order };
}

function assembleCanonical(shape: StepShape, refKeys: string[]): string {
  let out = shape.parts[0]!;
  for (let i = 0; i < shape.order.length; i++)
    out += JSON.stringify(refKeys[shape.order[i]!]) + shape.parts[i + 1]!;
  return out;
}

function instantiateShape(shape: StepShape, refKeys: string[]): JsonObject {
  const out = cloneJson(shape.params) as JsonObject;
  shape.refs.forEach(({ path }, i) => {
    const ref = getAt(out, path) as unknown as OutputReference;
    setAt(out, path, { $from: { ...ref.$from, step: refKeys[i]! } });
  });
  return out;
}

/** The scope of one cell (a class, not closures: created for every unique step, so it must be cheap). */
class CellScope implements Scope {
  constructor(
    private readonly cell: Cell,
    private readonly upstream: Map<string, string>,
  ) {}
  get cellId(): string {
    return this.cell.id;
  }
  value(axis: string): JsonValue | undefined {
    return this.cell.values[axis];
  }
  step(dep: string): OutputReferenceTarget {
    const key = this.upstream.get(dep);
    return key === undefined ? { kind: 'none' } : { kind: 'one', key };
  }
}

function cloneJson(v: JsonValue): JsonValue {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(cloneJson);
  const out: JsonObject = {};
  for (const k in v) out[k] = cloneJson(v[k]!);
  return out;
}

function getAt(root: JsonValue, path: readonly string[]): JsonValue {
  let cur = root;
  for (const seg of path) cur = (cur as Record<string, JsonValue>)[seg]!;
  return cur;
}

function setAt(root: JsonValue, path: readonly string[], value: JsonValue): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string, JsonValue>;
  parent[path[path.length - 1]!] = value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isOutputReference(v: unknown): v is OutputReference {
  return isObject(v) && isObject(v.$from) && Object.keys(v).length === 1;
}

function walkStrings(value: unknown, pointer: string, visit: (text: string, pointer: string) => void): void {
  if (typeof value === 'string') visit(value, pointer);
  else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, `${pointer}/${i}`, visit));
  else if (isObject(value))
    for (const [k, v] of Object.entries(value)) walkStrings(v, `${pointer}/${escapePointerToken(k)}`, visit);
}

function resolveRetry(raw: unknown, kind: AnyKind): RetrySpec {
  const base: RetrySpec = { ...STEP_DEFAULTS.retry, ...kind.defaults?.retry };
  if (typeof raw === 'number') return { ...base, maxAttempts: raw };
  if (!isObject(raw)) return base;
  return {
    maxAttempts: typeof raw.maxAttempts === 'number' ? raw.maxAttempts : base.maxAttempts,
    initialIntervalMs: parseDurationMs(raw.initialInterval) ?? base.initialIntervalMs,
    backoffCoefficient:
      typeof raw.backoffCoefficient === 'number' ? raw.backoffCoefficient : base.backoffCoefficient,
    maxIntervalMs: parseDurationMs(raw.maxInterval) ?? base.maxIntervalMs,
  };
}

/** How a value appears in cell ids and labels: strings and numbers as is, objects by their `name`. */
export function valueLabel(v: JsonValue | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.name === 'string') return v.name;
  return canonicalJson(v);
}

function makeCell(values: Record<string, JsonValue>, axes: string[]): Cell {
  const keys = new Map<string, string>();
  const idParts: string[] = [];
  for (const axis of axes) {
    const v = values[axis];
    if (v === undefined) continue;
    keys.set(axis, canonicalJson(v));
    idParts.push(`${axis}=${valueLabel(v)}`);
  }
  return { id: idParts.length ? idParts.join(',') : 'default', values, keys };
}

/** `id{axis=value,...}` with the axis values every cell of the step shares. */
function labelFor(id: string, cells: Cell[], axes: string[]): string {
  const first = cells[0];
  if (!first) return id;
  const common = axes.filter((axis) => {
    const key = first.keys.get(axis);
    return key !== undefined && cells.every((c) => c.keys.get(axis) === key);
  });
  if (common.length === axes.length && cells.length === 1 && axes.length > 0) return `${id}[${first.id}]`;
  return common.length ? `${id}{${common.map((a) => `${a}=${valueLabel(first.values[a])}`).join(',')}}` : id;
}

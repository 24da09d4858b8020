/**
 * Input validation with precise errors. Every problem names the file, the JSON pointer of the record
 * (plus its id where it has one), what was expected and what was found. Problems are collected, not
 * thrown one at a time, so a user fixing a file sees all of them (the first {@link MAX_LISTED} are
 * listed, then a count).
 *
 * Checks (COCO): field types; duplicate image / annotation / category ids; annotation referencing a
 * missing image or an unknown category; negative bbox sizes; bbox outside its image (beyond a
 * tolerance of {@link BBOX_TOLERANCE_PX}, since annotation tools round); RLE size differing from the
 * image; crowd flag not 0/1. The VOC and image checks live next to their loaders but use the same
 * collector.
 */
import { AblateError, ErrorType, permanent, type ErrorTypeName } from '../../../infra/errors';

/** How many problems an error message lists before summarising. */
export const MAX_LISTED = 10;

/** How far (in pixels) a box may stick out of its image before it is an error. */
export const BBOX_TOLERANCE_PX = 1;

/** Collects problems and throws them as one error. */
export class Issues {
  readonly list: string[] = [];
  constructor(readonly file: string) {}

  add(message: string): void {
    this.list.push(message);
  }

  get count(): number {
    return this.list.length;
  }

  /** Throw an AblateError listing the problems, if there are any. */
  throwIfAny(type: ErrorTypeName = ErrorType.InvalidInput): void {
    if (this.list.length === 0) return;
    const shown = this.list.slice(0, MAX_LISTED).map((m) => `  ${m}`);
    const more = this.list.length > MAX_LISTED ? `\n  ... and ${this.list.length - MAX_LISTED} more` : '';
    const noun = this.list.length === 1 ? 'problem' : 'problems';
    throw new AblateError(type, `${this.file}: ${this.list.length} ${noun}:\n${shown.join('\n')}${more}`);
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Where a record is: `/annotations/12 (id 345)`. */
export function where(section: string, index: number, id?: unknown): string {
  return `/${section}/${index}${id !== undefined ? ` (id ${show(id)})` : ''}`;
}

/** Check the fields of one COCO image record; returns false if it is unusable. */
export function checkCocoImage(v: unknown, index: number, issues: Issues): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    issues.add(`${where('images', index)}: expected an object, got ${show(v)}`);
    return false;
  }
  const r = v as Record<string, unknown>;
  const at = where('images', index, r.id);
  let ok = true;
  const bad = (message: string): void => {
    issues.add(message);
    ok = false;
  };
  if (!isInt(r.id)) bad(`${at}: id must be an integer, got ${show(r.id)}`);
  if (typeof r.file_name !== 'string' || r.file_name === '')
    bad(`${at}: file_name must be a non-empty string, got ${show(r.file_name)}`);
  for (const f of ['width', 'height'] as const) {
    if (!isInt(r[f]) || r[f] <= 0) bad(`${at}: ${f} must be a positive integer, got ${show(r[f])}`);
  }
  return ok;
}

/** Check the fields of one COCO category record. */
export function checkCocoCategory(v: unknown, index: number, issues: Issues): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    issues.add(`${where('categories', index)}: expected an object, got ${show(v)}`);
    return false;
  }
  const r = v as Record<string, unknown>;
  const at = where('categories', index, r.id);
  let ok = true;
  const bad = (message: string): void => {
    issues.add(message);
    ok = false;
  };
  if (!isInt(r.id)) bad(`${at}: id must be an integer, got ${show(r.id)}`);
  if (typeof r.name !== 'string') bad(`${at}: name must be a string, got ${show(r.name)}`);
  return ok;
}

/** Check the fields of one COCO annotation record (not its references). */
export function checkCocoAnnotation(v: unknown, index: number, issues: Issues): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    issues.add(`${where('annotations', index)}: expected an object, got ${show(v)}`);
    return false;
  }
  const r = v as Record<string, unknown>;
  const at = where('annotations', index, r.id);
  let ok = true;
  const bad = (message: string): void => {
    issues.add(message);
    ok = false;
  };
  if (!isInt(r.id)) bad(`${at}: id must be an integer, got ${show(r.id)}`);
  if (!isInt(r.image_id)) bad(`${at}: image_id must be an integer, got ${show(r.image_id)}`);
  if (!isInt(r.category_id)) bad(`${at}: category_id must be an integer, got ${show(r.category_id)}`);
  const b = r.bbox;
  if (!Array.isArray(b) || b.length !== 4 || !b.every(isNum)) {
    bad(`${at}: bbox must be [x, y, width, height] of finite numbers, got ${show(b)}`);
  } else {
    if ((b[2] as number) < 0) bad(`${at}: bbox ${show(b)} has a negative width`);
    if ((b[3] as number) < 0) bad(`${at}: bbox ${show(b)} has a negative height`);
  }
  if (r.area !== undefined && (!isNum(r.area) || r.area < 0))
    bad(`${at}: area must be a number >= 0, got ${show(r.area)}`);
  if (r.iscrowd !== undefined && r.iscrowd !== 0 && r.iscrowd !== 1)
    bad(`${at}: iscrowd must be 0 or 1, got ${show(r.iscrowd)}`);
  const s = r.segmentation;
  if (s !== undefined && s !== null) {
    if (Array.isArray(s)) {
      for (const [k, poly] of s.entries()) {
        if (!Array.isArray(poly) || poly.length % 2 !== 0 || !poly.every(isNum)) {
          issues.add(
            `${at}: segmentation[${k}] must be a flat list of x,y numbers (even length), got ${show(poly)}`,
          );
          ok = false;
          break;
        }
      }
    } else if (typeof s === 'object') {
      const rle = s as Record<string, unknown>;
      const size = rle.size;
      if (!Array.isArray(size) || size.length !== 2 || !size.every(isInt))
        bad(`${at}: RLE size must be [height, width], got ${show(size)}`);
      if (typeof rle.counts !== 'string' && !(Array.isArray(rle.counts) && rle.counts.every(isInt)))
        bad(`${at}: RLE counts must be a string or a list of integers`);
    } else {
      bad(`${at}: segmentation must be polygons or RLE, got ${show(s)}`);
    }
  }
  return ok;
}

/** Throws EmptyDataset when a set has no images. */
export function requireImages(file: string, count: number, what = 'images'): void {
  if (count === 0) throw permanent(ErrorType.EmptyDataset, `${file}: no ${what}: the split is empty`);
}

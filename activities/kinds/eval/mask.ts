/**
 * Run-length encoded (RLE) masks, compatible with pycocotools' mask API (`maskApi.c` / `_mask.pyx`):
 * the same column-major layout, the same compressed string codec, and the same polygon rasteriser, ported
 * operation by operation so that areas and IoUs equal pycocotools' exactly. A generic scan-line fill would
 * give different pixels on polygon edges, so `rleFromPolygon` follows the C code literally, including its
 * C integer conversions (`(int)` truncates toward zero; `uint` arithmetic wraps modulo 2^32).
 */

/** A binary mask of `h` x `w` pixels as alternating background/foreground run lengths (column-major). */
export interface Rle {
  h: number;
  w: number;
  /** Run lengths; the first run is background (possibly 0). */
  counts: Uint32Array;
}

/** A COCO `segmentation` value in RLE form: `counts` compressed (string) or uncompressed (number list). */
export interface RleObject {
  size: [number, number];
  counts: string | number[];
}

const U32 = 4294967296;

/** Encode a column-major binary mask (`mask[x * h + y]`, non-zero = foreground). */
export function rleEncode(mask: ArrayLike<number>, h: number, w: number): Rle {
  const a = h * w;
  const cnts: number[] = [];
  let p = 0;
  let c = 0;
  for (let j = 0; j < a; j++) {
    const v = mask[j] ? 1 : 0;
    if (v !== p) {
      cnts.push(c);
      c = 0;
      p = v;
    }
    c++;
  }
  cnts.push(c);
  return { h, w, counts: Uint32Array.from(cnts) };
}

/** Decode to a column-major mask of 0/1 bytes; throws if the runs overflow `h*w` pixels, as pycocotools. */
export function rleDecode(rle: Rle): Uint8Array {
  const size = rle.h * rle.w;
  const out = new Uint8Array(size);
  let pos = 0;
  let v = 0;
  for (const run of rle.counts) {
    if (pos + run > size) throw new RangeError('Invalid RLE mask representation: runs exceed h*w pixels');
    if (v) out.fill(1, pos, pos + run);
    pos += run;
    v ^= 1;
  }
  return out;
}

/** Number of foreground pixels (the sum of the odd-index runs, as a uint32 like the C code). */
export function rleArea(rle: Rle): number {
  let a = 0;
  const c = rle.counts;
  for (let j = 1; j < c.length; j += 2) a += c[j]!;
  return a % U32;
}

/** pycocotools' compressed string form of the run lengths (LEB128-like, 6 bits a char, from '0'). */
export function rleToString(rle: Rle): string {
  const c = rle.counts;
  const chars: number[] = [];
  for (let i = 0; i < c.length; i++) {
    let x = c[i]!;
    if (i > 2) x -= c[i - 2]!;
    let more = true;
    while (more) {
      // x & 0x1f and x >>= 5 on a 64-bit signed integer; x may exceed int32, so use floor division.
      const q = Math.floor(x / 32);
      let ch = x - q * 32;
      x = q;
      more = ch & 0x10 ? x !== -1 : x !== 0;
      if (more) ch |= 0x20;
      chars.push(ch + 48);
    }
  }
  return String.fromCharCode(...chars);
}

/** Parse pycocotools' compressed string form; throws a RangeError on a character outside '0'..'o'. */
export function rleFromString(s: string, h: number, w: number): Rle {
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new RangeError(`RLE string ends inside a number at character ${p}`);
      const code = s.charCodeAt(p);
      if (code < 48 || code > 111)
        throw new RangeError(
          `RLE string has character ${JSON.stringify(s[p])} at ${p}; expected characters '0'..'o'`,
        );
      const c = code - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      // Sign-extend from the last group's 0x10 bit (x |= -1 << 5k).
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    const m = cnts.length;
    if (m > 2) x += cnts[m - 2]!;
    cnts.push(((x % U32) + U32) % U32);
  }
  return { h, w, counts: Uint32Array.from(cnts) };
}

/**
 * Union (or intersection) of masks of the same size, by walking the runs. Masks of differing sizes give an
 * empty 0x0 RLE, as pycocotools.
 */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  if (rles.length === 0) return { h: 0, w: 0, counts: new Uint32Array(0) };
  const first = rles[0]!;
  if (rles.length === 1) return { h: first.h, w: first.w, counts: first.counts.slice() };
  let { h, w } = first;
  let cur = Array.from(first.counts);
  for (let i = 1; i < rles.length; i++) {
    const B = rles[i]!;
    if (B.h !== h || B.w !== w) {
      h = w = 0;
      cur = [];
      break;
    }
    const A = cur;
    const out: number[] = [];
    let ca = A[0] ?? 0;
    let cb = B.counts[0] ?? 0;
    let v = 0;
    let va = 0;
    let vb = 0;
    let a = 1;
    let b = 1;
    let cc = 0;
    let ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++]!;
        va ^= 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++]!;
        vb ^= 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) {
        out.push(cc);
        cc = 0;
      }
    }
    cur = out;
  }
  return { h, w, counts: Uint32Array.from(cur) };
}

/**
 * Tight bounding box `[x, y, w, h]` of the foreground (pycocotools 2.0.x's corrected `rleToBbox`). An
 * empty mask gives zeros when it has fewer than two runs and pycocotools' uint-wrapped values otherwise.
 */
export function rleToBbox(rle: Rle): [number, number, number, number] {
  const { h, w } = rle;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  for (let j = 0; j < m; j++) {
    const start = cc;
    const run = rle.counts[j]!;
    cc = (cc + run) % U32;
    if (j % 2 === 0 || run === 0) continue;
    const yStart = start % h;
    const xStart = (start - yStart) / h;
    const last = (cc - 1 + U32) % U32;
    const yEnd = last % h;
    const xEnd = (last - yEnd) / h;
    xs = Math.min(xs, xStart);
    xe = Math.max(xe, xEnd);
    if (xStart < xEnd) {
      ys = 0;
      ye = h - 1;
    } else {
      ys = Math.min(ys, yStart);
      ye = Math.max(ye, yEnd);
    }
  }
  return [xs, ys, (xe - xs + 1 + U32) % U32, (ye - ys + 1 + U32) % U32];
}

/** C's `(int)` conversion of a double: truncation toward zero (NaN, undefined in C, becomes 0). */
function cInt(v: number): number {
  return Math.trunc(v) | 0;
}

/**
 * Rasterise one polygon `[x0, y0, x1, y1, ...]` (pixel coordinates) like pycocotools' `rleFrPoly`:
 * upsample by 5, walk every edge densely, keep the points where x changes, then turn the y-boundary points
 * into runs. Odd trailing coordinates are ignored (`k = len/2` points).
 */
export function rleFromPolygon(xy: ArrayLike<number>, h: number, w: number): Rle {
  const scale = 5;
  const k = Math.floor(xy.length / 2);
  const x = new Int32Array(k + 1);
  const y = new Int32Array(k + 1);
  for (let j = 0; j < k; j++) x[j] = cInt(scale * xy[j * 2]! + 0.5);
  for (let j = 0; j < k; j++) y[j] = cInt(scale * xy[j * 2 + 1]! + 0.5);
  x[k] = x[0]!;
  y[k] = y[0]!;
  let m = 0;
  for (let j = 0; j < k; j++) m += Math.max(Math.abs(x[j]! - x[j + 1]!), Math.abs(y[j]! - y[j + 1]!)) + 1;
  const u = new Int32Array(m);
  const v = new Int32Array(m);
  m = 0;
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      let t = xs;
      xs = xe;
      xe = t;
      t = ys;
      ys = ye;
      ye = t;
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u[m] = t + xs;
        v[m] = cInt(ys + s * t + 0.5);
        m++;
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v[m] = t + ys;
        u[m] = cInt(xs + s * t + 0.5);
        m++;
      }
    }
  }
  // Points along the y-boundary, downsampled back to pixel resolution.
  const n = m;
  const bx: number[] = [];
  const by: number[] = [];
  // `w - 1` is computed in unsigned arithmetic in C.
  const wMax = w === 0 ? 2 ** 64 - 1 : w - 1;
  for (let j = 1; j < n; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > wMax) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx.push(cInt(xd));
    by.push(cInt(yd));
  }
  // Runs from the boundary points: sort the pixel indices, take differences, fold zero-length runs.
  const a = new Uint32Array(bx.length + 1);
  for (let j = 0; j < bx.length; j++) a[j] = Math.imul(bx[j]!, h | 0) + by[j]!;
  a[bx.length] = (h * w) % U32;
  a.sort();
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]!;
    a[j] = t - prev;
    prev = t;
  }
  const b: number[] = [a[0]!];
  let j = 1;
  while (j < a.length) {
    if (a[j]! > 0) b.push(a[j++]!);
    else {
      j++;
      if (j < a.length) b[b.length - 1]! += a[j++]!;
    }
  }
  return { h, w, counts: Uint32Array.from(b) };
}

/** A box `[x, y, w, h]` as a mask (pycocotools' `frBbox`: the box's 4-point polygon). */
export function rleFromBbox(bb: ArrayLike<number>, h: number, w: number): Rle {
  const xs = bb[0]!;
  const xe = xs + bb[2]!;
  const ys = bb[1]!;
  const ye = ys + bb[3]!;
  return rleFromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/**
 * Box IoU like pycocotools' `bbIou` (xywh, no +1), into `out[d * G + g]`, for the `D` boxes of `dt` from
 * box `dStart` and the `G` boxes of `gt` from box `gStart`. For a crowd GT the union is the
 * detection's area. The operation order is kept so results are bit-identical.
 */
export function bboxIou(
  dt: ArrayLike<number>,
  gt: ArrayLike<number>,
  isCrowd: ArrayLike<number>,
  out: Float64Array = new Float64Array(Math.floor(dt.length / 4) * Math.floor(gt.length / 4)),
  dStart = 0,
  D = Math.floor(dt.length / 4) - dStart,
  gStart = 0,
  G = Math.floor(gt.length / 4) - gStart,
): Float64Array {
  for (let g = 0; g < G; g++) {
    const go = 4 * (gStart + g);
    const gx = gt[go]!;
    const gy = gt[go + 1]!;
    const gw = gt[go + 2]!;
    const gh = gt[go + 3]!;
    const ga = gw * gh;
    const crowd = isCrowd[g] !== 0;
    for (let d = 0; d < D; d++) {
      const dof = 4 * (dStart + d);
      const dx = dt[dof]!;
      const dy = dt[dof + 1]!;
      const dw = dt[dof + 2]!;
      const dh = dt[dof + 3]!;
      const da = dw * dh;
      out[d * G + g] = 0;
      const iw = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (iw <= 0) continue;
      const ih = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
      if (ih <= 0) continue;
      const i = iw * ih;
      const u = crowd ? da : da + ga - i;
      out[d * G + g] = i / u;
    }
  }
  return out;
}

/**
 * Mask IoU like pycocotools' `rleIou`, into `out[d * G + g]`: a box-IoU pre-filter on the masks' tight
 * boxes, then intersection and union counted by walking the runs; -1 where the mask sizes differ; for a
 * crowd GT the union is the detection's area.
 */
export function rleIou(
  dt: readonly Rle[],
  gt: readonly Rle[],
  isCrowd: ArrayLike<number>,
  out: Float64Array = new Float64Array(dt.length * gt.length),
): Float64Array {
  const D = dt.length;
  const G = gt.length;
  const db = new Float64Array(D * 4);
  const gb = new Float64Array(G * 4);
  for (let d = 0; d < D; d++) db.set(rleToBbox(dt[d]!), d * 4);
  for (let g = 0; g < G; g++) gb.set(rleToBbox(gt[g]!), g * 4);
  bboxIou(db, gb, isCrowd, out);
  for (let g = 0; g < G; g++) {
    const gr = gt[g]!;
    const crowd = isCrowd[g] !== 0;
    for (let d = 0; d < D; d++) {
      if (!(out[d * G + g]! > 0)) continue;
      const dr = dt[d]!;
      if (dr.h !== gr.h || dr.w !== gr.w) {
        out[d * G + g] = -1;
        continue;
      }
      const A = dr.counts;
      const B = gr.counts;
      let ca = A[0]!;
      let cb = B[0]!;
      let va = 0;
      let vb = 0;
      let a = 1;
      let b = 1;
      let inter = 0;
      let uni = 0;
      let ct = 1;
      while (ct > 0) {
        const c = Math.min(ca, cb);
        if (va || vb) {
          uni += c;
          if (va && vb) inter += c;
        }
        ct = 0;
        ca -= c;
        if (!ca && a < A.length) {
          ca = A[a++]!;
          va ^= 1;
        }
        ct += ca;
        cb -= c;
        if (!cb && b < B.length) {
          cb = B[b++]!;
          vb ^= 1;
        }
        ct += cb;
      }
      if (inter === 0) uni = 1;
      else if (crowd) uni = rleArea(dr);
      out[d * G + g] = inter / uni;
    }
  }
  return out;
}

/** Thrown for a `segmentation` value pycocotools cannot read either; the caller adds where it was. */
export class SegmentationError extends Error {
  override readonly name = 'SegmentationError';
}

/**
 * A COCO `segmentation` value as one RLE, like pycocotools' `COCO.annToRLE`: polygons are rasterised at the
 * image size and merged (union); uncompressed RLE (`counts` a list) and compressed RLE are read with their
 * own `size`. A first polygon of 4 or fewer numbers is refused (pycocotools would read 4 numbers as a box
 * list and fail); later short polygons are rasterised as they are, as pycocotools does.
 */
export function segmentationToRle(seg: unknown, imageH: number | undefined, imageW: number | undefined): Rle {
  if (Array.isArray(seg)) {
    if (seg.length === 0) throw new SegmentationError('is an empty polygon list');
    if (imageH === undefined || imageW === undefined)
      throw new SegmentationError('is a polygon list, but its image has no numeric height/width');
    const parts = seg.map((p, i) => {
      if (!Array.isArray(p) || !p.every((n) => typeof n === 'number' && Number.isFinite(n)))
        throw new SegmentationError(`[${i}] is not a list of finite numbers (a polygon)`);
      return p as number[];
    });
    // pycocotools' frPyObjects decides from the first polygon: 4 numbers would be read as a box list (and
    // fail in PyPI pycocotools), fewer is not a polygon at all.
    if (parts[0]!.length <= 4)
      throw new SegmentationError(
        `[0] has ${parts[0]!.length} numbers; a polygon needs at least 3 points [x0, y0, x1, y1, x2, y2, ...]`,
      );
    const rles = parts.map((p) => rleFromPolygon(p, imageH, imageW));
    return rleMerge(rles);
  }
  if (typeof seg === 'object' && seg !== null) {
    const obj = seg as { size?: unknown; counts?: unknown };
    const size = obj.size;
    if (
      !Array.isArray(size) ||
      size.length !== 2 ||
      !size.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0)
    )
      throw new SegmentationError('.size must be [height, width] (non-negative integers)');
    const [h, w] = size as [number, number];
    if (typeof obj.counts === 'string') {
      try {
        return rleFromString(obj.counts, h, w);
      } catch (err) {
        throw new SegmentationError(`.counts: ${(err as Error).message}`);
      }
    }
    if (Array.isArray(obj.counts)) {
      const counts = obj.counts as unknown[];
      if (!counts.every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0))
        throw new SegmentationError('.counts must be a string or a list of non-negative integers');
      return { h, w, counts: Uint32Array.from(counts as number[], (n) => n % U32) };
    }
    throw new SegmentationError('.counts must be a string (compressed RLE) or a list of run lengths');
  }
  throw new SegmentationError('must be a list of polygons or an RLE object {size, counts}');
}

/** The RLE in COCO's compressed JSON form. */
export function rleToObject(rle: Rle): RleObject {
  return { size: [rle.h, rle.w], counts: rleToString(rle) };
}

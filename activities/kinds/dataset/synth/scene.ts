/**
 * Procedural scenes: a textured, cluttered background and textured shape objects, rendered with the
 * supersampled rasteriser. Detection scenes carry exact ground truth derived from the pixels: the
 * visible (modal) mask of every object after occlusion and image-border truncation, as polygons, its
 * tight box and its area, plus crowd regions as RLE. Everything is a pure function of (seed, split,
 * index): no clock, no Math.random.
 *
 * Object sizes. COCO's area ranges (small < 32^2, medium < 96^2, large above, in pixels of images whose
 * long side is 640) are applied relative to the image: a synthetic image of side R uses the thresholds
 * scaled by (R/640)^2 (see `scaledAreaRanges` in presets.ts). The generator draws each object's target
 * area from a mixture over the three scaled ranges (`sizeMix`), so every range is populated at any R;
 * at R = 64 a "small" object is 2-3 px across, as hard as COCO's small objects are.
 */
import { createRng, type Rng } from '../../../../infra/prng';
import {
  CLASSIFICATION_CLASSES,
  COLOURS,
  DETECTION_CLASSES,
  SHAPE_POLYGONS,
  textureValue,
  type ClassSpec,
  type Point,
} from './primitives';
import {
  createCanvas,
  paintPolygon,
  signedArea,
  simplifyRing,
  SS,
  toUint8,
  traceOuterRings,
  type Canvas,
} from './raster';

/** Relative area bounds (area / R^2) of the three COCO ranges, and the extremes the generator uses. */
export const RELATIVE_AREA = {
  /** Smallest object the generator draws: (0.035 R)^2. */
  min: 0.035 ** 2,
  /** COCO small/medium boundary, 32^2 / 640^2. */
  small: (32 / 640) ** 2,
  /** COCO medium/large boundary, 96^2 / 640^2. */
  medium: (96 / 640) ** 2,
  /** Largest object: (0.6 R)^2. */
  max: 0.6 ** 2,
} as const;

/** Knobs of a detection scene. */
export interface DetectionSceneOptions {
  /** Image side in pixels (square images). */
  size: number;
  /** Number of detection classes used (the first K of DETECTION_CLASSES). */
  classes: number;
  /** Mean number of annotated objects per image (at least one is always drawn). @default 3 */
  meanObjects?: number;
  /** Hard cap on annotated objects per image. @default 8 */
  maxObjects?: number;
  /** Fractions of objects drawn in the small / medium / large range. @default [0.2, 0.35, 0.45] */
  sizeMix?: [number, number, number];
  /** Mean number of unannotated distractor objects (other shape/texture pairs). @default 1 */
  meanDistractors?: number;
  /** Probability that an image holds a crowd region. @default 0.03 */
  crowdRate?: number;
}

/** One annotated region of a detection scene, in pixel coordinates (COCO convention). */
export interface SceneInstance {
  /** 0-based index into the scene's classes. */
  category: number;
  isCrowd: boolean;
  /** Tight box of the visible mask [x, y, w, h], 2 decimals. */
  bbox: [number, number, number, number];
  /** Mask area in px^2 (polygon area, or RLE pixel count for crowds), 2 decimals. */
  area: number;
  /** Visible mask as polygons (flat x,y lists, 2 decimals); absent for crowds. */
  polygons?: number[][];
  /** Crowd mask as uncompressed column-major RLE. */
  rle?: { counts: number[]; size: [number, number] };
  /** The object extends beyond the image border. */
  truncated: boolean;
  /** Another object hides part of it. */
  occluded: boolean;
  /** Visible fraction < 0.4, or a crowd region: VOC's "difficult" flag. */
  difficult: boolean;
}

/** A rendered detection scene. */
export interface DetectionScene {
  width: number;
  height: number;
  /** 8-bit RGB, HWC. */
  pixels: Buffer;
  instances: SceneInstance[];
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** Area of each unit-frame shape polygon. */
const UNIT_AREAS = SHAPE_POLYGONS.map((p) => Math.abs(signedArea(p)));

/** A muted colour for backgrounds and clutter. */
function mutedColour(rng: Rng): [number, number, number] {
  const base = rng.pick(COLOURS).rgb;
  const grey = rng.range(0.25, 0.8);
  const mix = rng.range(0.55, 0.9);
  return [0, 1, 2].map((c) => base[c]! * (1 - mix) + grey * mix) as [number, number, number];
}

/** Primary and secondary colour of an object of class `spec`. */
function objectColours(rng: Rng, spec: ClassSpec): [Float32Array, Float32Array] {
  const family = rng.chance(0.7) ? spec.colour : rng.int(COLOURS.length);
  const base = COLOURS[family]!.rgb;
  const gain = rng.range(0.8, 1.15);
  const primary = new Float32Array(3);
  for (let c = 0; c < 3; c++) primary[c] = Math.min(1, Math.max(0, base[c]! * gain + rng.range(-0.07, 0.07)));
  const towardsWhite = rng.chance(0.5);
  const k = rng.range(0.55, 0.75);
  const secondary = new Float32Array(3);
  for (let c = 0; c < 3; c++)
    secondary[c] = towardsWhite ? primary[c]! + (1 - primary[c]!) * k : primary[c]! * (1 - k);
  return [primary, secondary];
}

/** Pixel polygon of a shape with centre, radius, rotation and aspect ratio. */
function placePolygon(
  shape: number,
  cx: number,
  cy: number,
  r: number,
  angle: number,
  aspect: number,
): Point[] {
  const sx = r * Math.sqrt(aspect);
  const sy = r / Math.sqrt(aspect);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  return SHAPE_POLYGONS[shape]!.map(([x, y]) => {
    const ux = x * sx;
    const uy = y * sy;
    return [cx + ux * cos - uy * sin, cy + ux * sin + uy * cos] as Point;
  });
}

/** A textured object ready to paint. */
interface Item {
  spec: ClassSpec;
  poly: Point[];
  cx: number;
  cy: number;
  sx: number;
  sy: number;
  angle: number;
  freq: number;
  light: [number, number];
  colours: [Float32Array, Float32Array];
}

function makeItem(rng: Rng, spec: ClassSpec, cx: number, cy: number, area: number): Item {
  const r = Math.sqrt(area / UNIT_AREAS[spec.shape]!);
  const angle = rng.range(0, 2 * Math.PI);
  const aspect = rng.logRange(0.75, 1.33);
  const la = rng.range(0, 2 * Math.PI);
  return {
    spec,
    poly: placePolygon(spec.shape, cx, cy, r, angle, aspect),
    cx,
    cy,
    sx: r * Math.sqrt(aspect),
    sy: r / Math.sqrt(aspect),
    angle,
    freq: rng.range(2, 3.2),
    light: [0.15 * Math.cos(la), 0.15 * Math.sin(la)],
    colours: objectColours(rng, spec),
  };
}

/** Paint an item; returns the number of samples it covers inside the image. */
function paintItem(canvas: Canvas, item: Item, owner?: { grid: Int32Array; id: number }): number {
  const cos = Math.cos(item.angle);
  const sin = Math.sin(item.angle);
  const [p, s] = item.colours;
  return paintPolygon(
    canvas,
    item.poly,
    (px, py, out) => {
      const dx = px + 0.5 - item.cx;
      const dy = py + 0.5 - item.cy;
      const u = (dx * cos + dy * sin) / item.sx;
      const v = (-dx * sin + dy * cos) / item.sy;
      const t = textureValue(item.spec.texture, u, v, item.freq);
      const shade = 1 + item.light[0] * u + item.light[1] * v;
      for (let c = 0; c < 3; c++) out[c] = (p[c]! * (1 - t) + s[c]! * t) * shade;
    },
    owner,
  );
}

/** Gradient + low-frequency noise + clutter (lines, blobs, faint textured patches). */
function paintBackground(canvas: Canvas, rng: Rng): void {
  const { width: W, height: H, rgb } = canvas;
  const c1 = mutedColour(rng);
  const c2 = mutedColour(rng);
  const theta = rng.range(0, 2 * Math.PI);
  const gx = Math.cos(theta) / W;
  const gy = Math.sin(theta) / H;
  const G = 5;
  const lattice = Array.from({ length: G * G }, () => rng.range(-0.09, 0.09));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + (x - W / 2) * gx + (y - H / 2) * gy));
      const fx = (x / W) * (G - 1);
      const fy = (y / H) * (G - 1);
      const ix = Math.min(G - 2, Math.floor(fx));
      const iy = Math.min(G - 2, Math.floor(fy));
      const ax = fx - ix;
      const ay = fy - iy;
      const n =
        lattice[iy * G + ix]! * (1 - ax) * (1 - ay) +
        lattice[iy * G + ix + 1]! * ax * (1 - ay) +
        lattice[(iy + 1) * G + ix]! * (1 - ax) * ay +
        lattice[(iy + 1) * G + ix + 1]! * ax * ay;
      const o = (y * W + x) * 3;
      for (let c = 0; c < 3; c++) rgb[o + c] = c1[c]! * (1 - t) + c2[c]! * t + n;
    }
  }
  const R = Math.max(W, H);
  const clutter = 2 + rng.int(9);
  for (let i = 0; i < clutter; i++) {
    const colour = mutedColour(rng);
    const kind = rng.int(3);
    const cx = rng.range(0, W);
    const cy = rng.range(0, H);
    const angle = rng.range(0, Math.PI);
    let poly: Point[];
    if (kind === 0) {
      const len = rng.range(0.15, 0.6) * R;
      const thick = rng.range(0.5, 1.6);
      // A thin rotated rectangle.
      const dx = (Math.cos(angle) * len) / 2;
      const dy = (Math.sin(angle) * len) / 2;
      const nx = (-Math.sin(angle) * thick) / 2;
      const ny = (Math.cos(angle) * thick) / 2;
      poly = [
        [cx - dx - nx, cy - dy - ny],
        [cx + dx - nx, cy + dy - ny],
        [cx + dx + nx, cy + dy + ny],
        [cx - dx + nx, cy - dy + ny],
      ];
    } else if (kind === 1) {
      poly = placePolygon(0, cx, cy, rng.range(0.02, 0.07) * R, angle, rng.range(0.5, 2));
    } else {
      poly = placePolygon(1, cx, cy, rng.range(0.08, 0.25) * R, angle, rng.range(0.5, 2));
    }
    const texture = kind === 2 ? rng.int(10) : 0;
    const freq = rng.range(2, 4);
    const light = rng.range(0.75, 0.95);
    paintPolygon(canvas, poly, (px, py, out) => {
      const t = texture === 0 ? 0 : textureValue(texture, (px - cx) / (0.1 * R), (py - cy) / (0.1 * R), freq);
      for (let c = 0; c < 3; c++) out[c] = colour[c]! * (t ? light : 1);
    });
  }
}

/** Sensor noise, then 8-bit quantisation. */
function finish(canvas: Canvas, rng: Rng): Buffer {
  const sigma = rng.range(0.012, 0.035);
  const rgb = canvas.rgb;
  for (let i = 0; i < rgb.length; i++) rgb[i] = rgb[i]! + sigma * rng.normal();
  return toUint8(canvas);
}

/** Target area (px^2) drawn from the size mixture. */
function drawArea(rng: Rng, R: number, mix: readonly [number, number, number]): number {
  const u = rng.float() * (mix[0] + mix[1] + mix[2]);
  const [lo, hi] =
    u < mix[0]
      ? [RELATIVE_AREA.min, RELATIVE_AREA.small]
      : u < mix[0] + mix[1]
        ? [RELATIVE_AREA.small, RELATIVE_AREA.medium]
        : [RELATIVE_AREA.medium, RELATIVE_AREA.max];
  return rng.logRange(lo, hi) * R * R;
}

/** Poisson sample (Knuth), fine for the small means used here. */
function poisson(rng: Rng, mean: number): number {
  const l = Math.exp(-mean);
  let k = 0;
  let p = rng.float();
  while (p > l) {
    k++;
    p *= rng.float();
  }
  return k;
}

function boxIou(a: readonly number[], b: readonly number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const ua = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return ua > 0 ? inter / ua : 0;
}

function polyBounds(poly: readonly Point[]): [number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const [x, y] of poly) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

/** Flattened polygons -> bbox [x, y, w, h] and total area, both 2 decimals. */
function polygonsBoxArea(polygons: number[][]): { bbox: [number, number, number, number]; area: number } {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  let area = 0;
  for (const flat of polygons) {
    const pts: Point[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const x = flat[i]!;
      const y = flat[i + 1]!;
      pts.push([x, y]);
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
    area += Math.abs(signedArea(pts));
  }
  return { bbox: [round2(x0), round2(y0), round2(x1 - x0), round2(y1 - y0)], area: round2(area) };
}

/** Visible mask of owner `id` -> simplified polygons in pixel coordinates. */
function visiblePolygons(grid: Int32Array, gridW: number, id: number, box: number[]): number[][] {
  const [sx0, sy0, sx1, sy1] = box as [number, number, number, number];
  const w = sx1 - sx0 + 1;
  const h = sy1 - sy0 + 1;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) if (grid[(sy0 + y) * gridW + sx0 + x] === id) mask[y * w + x] = 1;
  }
  const out: number[][] = [];
  for (const ring of traceOuterRings(mask, w, h)) {
    const px = ring.map(([x, y]) => [(x + sx0) / SS, (y + sy0) / SS] as Point);
    const simple = simplifyRing(px, 0.3);
    if (simple.length < 3 || Math.abs(signedArea(simple)) < 0.5) continue;
    out.push(simple.flatMap(([x, y]) => [round2(x), round2(y)]));
  }
  return out;
}

/** Render detection scene `index` of `split` for `seed`. */
export function renderDetectionScene(
  seed: number | string,
  split: string,
  index: number,
  options: DetectionSceneOptions,
): DetectionScene {
  const R = options.size;
  const rng = createRng(seed, 'det', split, index);
  const classes = DETECTION_CLASSES.slice(0, options.classes);
  const active = new Set(classes.map((c) => c.shape * 10 + c.texture));
  const distractorPool = CLASSIFICATION_CLASSES.filter((c) => !active.has(c.shape * 10 + c.texture));
  const mix = options.sizeMix ?? [0.2, 0.35, 0.45];

  const canvas = createCanvas(R, R);
  paintBackground(canvas, rng);

  type Placed = { item: Item; category: number; crowd: number; annotated: boolean };
  const placed: Placed[] = [];
  const boxes: number[][] = [];
  const nObjects = Math.min(options.maxObjects ?? 8, 1 + poisson(rng, (options.meanObjects ?? 3) - 1));
  for (let i = 0; i < nObjects; i++) {
    const category = rng.int(classes.length);
    const area = drawArea(rng, R, mix);
    let cx = 0;
    let cy = 0;
    for (let attempt = 0; attempt < 10; attempt++) {
      cx = rng.range(0.05, 0.95) * R;
      cy = rng.range(0.05, 0.95) * R;
      const half = Math.sqrt(area) / 2;
      const box = [cx - half, cy - half, cx + half, cy + half];
      if (boxes.every((b) => boxIou(b, box) <= 0.4)) break;
    }
    const item = makeItem(rng, classes[category]!, cx, cy, area);
    boxes.push(polyBounds(item.poly));
    placed.push({ item, category, crowd: -1, annotated: true });
  }
  const nDistractors = poisson(rng, options.meanDistractors ?? 1);
  for (let i = 0; i < nDistractors; i++) {
    const spec = rng.pick(distractorPool);
    const area = rng.logRange(RELATIVE_AREA.small, RELATIVE_AREA.max / 2) * R * R;
    const item = makeItem(rng, spec, rng.range(0.05, 0.95) * R, rng.range(0.05, 0.95) * R, area);
    placed.push({ item, category: -1, crowd: -1, annotated: false });
  }
  let crowdCategory = -1;
  if (rng.chance(options.crowdRate ?? 0.03)) {
    crowdCategory = rng.int(classes.length);
    const gx = rng.range(0.25, 0.75) * R;
    const gy = rng.range(0.25, 0.75) * R;
    const spread = rng.range(0.1, 0.2) * R;
    const members = 6 + rng.int(9);
    for (let i = 0; i < members; i++) {
      const area = rng.logRange(RELATIVE_AREA.min, RELATIVE_AREA.small * 2) * R * R;
      const item = makeItem(
        rng,
        classes[crowdCategory]!,
        gx + rng.range(-spread, spread),
        gy + rng.range(-spread, spread),
        area,
      );
      placed.push({ item, category: crowdCategory, crowd: 0, annotated: false });
    }
  }
  // Depth order: a seeded shuffle, so crowds, distractors and objects occlude each other freely.
  const order = rng.shuffle(placed.map((_, i) => i));
  const gridW = R * SS;
  const grid = new Int32Array(gridW * R * SS);
  const painted = new Int32Array(placed.length);
  for (const i of order) painted[i] = paintItem(canvas, placed[i]!.item, { grid, id: i + 1 });
  const pixels = finish(canvas, rng);

  // Visible samples per owner: counts and sample-space boxes, one pass over the grid.
  const count = new Int32Array(placed.length + 1);
  const box = Array.from({ length: placed.length + 1 }, () => [Infinity, Infinity, -1, -1]);
  for (let sy = 0; sy < R * SS; sy++) {
    for (let sx = 0; sx < gridW; sx++) {
      const id = grid[sy * gridW + sx]!;
      if (id === 0) continue;
      count[id]!++;
      const b = box[id]!;
      if (sx < b[0]!) b[0] = sx;
      if (sy < b[1]!) b[1] = sy;
      if (sx > b[2]!) b[2] = sx;
      if (sy > b[3]!) b[3] = sy;
    }
  }

  const instances: SceneInstance[] = [];
  const full = SS * SS;
  for (let i = 0; i < placed.length; i++) {
    const p = placed[i]!;
    if (!p.annotated) continue;
    const id = i + 1;
    const fullArea = Math.abs(signedArea(p.item.poly));
    const visibleArea = count[id]! / full;
    // An object less than 10% visible (or under 1 px^2) is not annotated, as in COCO.
    if (visibleArea < 1 || visibleArea < 0.1 * fullArea) continue;
    const [bx0, by0, bx1, by1] = polyBounds(p.item.poly);
    const truncated = bx0 < 0 || by0 < 0 || bx1 > R || by1 > R;
    // Occluded: a later object took some of the samples this one painted.
    const occluded = count[id]! < painted[i]!;
    let polygons: number[][];
    if (!truncated && !occluded) {
      polygons = [p.item.poly.flatMap(([x, y]) => [round2(x), round2(y)])];
    } else {
      polygons = visiblePolygons(grid, gridW, id, box[id]!);
      if (polygons.length === 0) continue;
    }
    const { bbox, area } = polygonsBoxArea(polygons);
    instances.push({
      category: p.category,
      isCrowd: false,
      bbox,
      area,
      polygons,
      truncated,
      occluded,
      difficult: visibleArea < 0.4 * fullArea,
    });
  }
  if (crowdCategory >= 0) {
    const crowd = crowdInstance(grid, R, placed, crowdCategory);
    if (crowd) instances.push(crowd);
  }
  return { width: R, height: R, pixels, instances };
}

/** The union of a crowd's visible members at pixel resolution, as a COCO crowd annotation. */
function crowdInstance(
  grid: Int32Array,
  R: number,
  placed: ReadonlyArray<{ crowd: number }>,
  category: number,
): SceneInstance | undefined {
  const gridW = R * SS;
  const isMember = (id: number): boolean => id > 0 && placed[id - 1]!.crowd === 0;
  const mask = new Uint8Array(R * R);
  let x0 = R;
  let y0 = R;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  for (let py = 0; py < R; py++) {
    for (let px = 0; px < R; px++) {
      let n = 0;
      for (let j = 0; j < SS; j++)
        for (let i = 0; i < SS; i++) if (isMember(grid[(py * SS + j) * gridW + px * SS + i]!)) n++;
      if (n * 2 >= SS * SS) {
        mask[py * R + px] = 1;
        area++;
        x0 = Math.min(x0, px);
        y0 = Math.min(y0, py);
        x1 = Math.max(x1, px);
        y1 = Math.max(y1, py);
      }
    }
  }
  if (area === 0) return undefined;
  // Column-major runs, starting with a (possibly empty) background run.
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let px = 0; px < R; px++) {
    for (let py = 0; py < R; py++) {
      const v = mask[py * R + px]!;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return {
    category,
    isCrowd: true,
    bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
    area,
    rle: { counts, size: [R, R] },
    truncated: false,
    occluded: false,
    difficult: true,
  };
}

/** Render classification image `index` of class `classIndex` (single centred object plus clutter). */
export function renderClassificationImage(
  seed: number | string,
  split: string,
  classIndex: number,
  index: number,
  size: number,
): Buffer {
  const R = size;
  const rng = createRng(seed, 'cls', split, classIndex, index);
  const canvas = createCanvas(R, R);
  paintBackground(canvas, rng);
  const nDistractors = rng.int(3);
  for (let i = 0; i < nDistractors; i++) {
    let spec = rng.pick(CLASSIFICATION_CLASSES);
    if (spec === CLASSIFICATION_CLASSES[classIndex]) spec = CLASSIFICATION_CLASSES[(classIndex + 1) % 100]!;
    const edge = rng.int(4);
    const t = rng.range(0, R);
    const [cx, cy] = edge === 0 ? [t, 0] : edge === 1 ? [R, t] : edge === 2 ? [t, R] : [0, t];
    paintItem(canvas, makeItem(rng, spec, cx, cy, rng.range(0.02, 0.08) * R * R));
  }
  const spec = CLASSIFICATION_CLASSES[classIndex]!;
  const item = makeItem(
    rng,
    spec,
    rng.range(0.35, 0.65) * R,
    rng.range(0.35, 0.65) * R,
    rng.logRange(0.1, 0.4) * R * R,
  );
  paintItem(canvas, item);
  return finish(canvas, rng);
}

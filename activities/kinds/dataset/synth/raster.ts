/**
 * Rasterisation for the synthetic generator: polygons are scan-converted on a supersampled grid
 * (SS x SS samples per pixel), which gives anti-aliased edges (coverage) and an exact per-sample owner
 * map from which the visible part of every object is known after occlusion.
 *
 * Coordinates follow COCO: pixel (i, j) covers [i, i+1) x [j, j+1); sample (a, b) sits at
 * ((a + 0.5) / SS, (b + 0.5) / SS).
 */
import type { Point } from './primitives';

/** Samples per pixel along each axis. */
export const SS = 4;

/** Calls `fill(sy, sxStart, sxEnd)` for every run of samples inside `poly` (even-odd rule), clipped to the grid. */
export function scanPolygon(
  poly: readonly Point[],
  gridW: number,
  gridH: number,
  fill: (sy: number, sx0: number, sx1: number) => void,
): void {
  let minY = Infinity;
  let maxY = -Infinity;
  for (const [, y] of poly) {
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const sy0 = Math.max(0, Math.ceil(minY * SS - 0.5));
  const sy1 = Math.min(gridH - 1, Math.floor(maxY * SS - 0.5));
  const xs: number[] = [];
  const n = poly.length;
  for (let sy = sy0; sy <= sy1; sy++) {
    const y = (sy + 0.5) / SS;
    xs.length = 0;
    for (let i = 0; i < n; i++) {
      const [ax, ay] = poly[i]!;
      const [bx, by] = poly[(i + 1) % n]!;
      // Half-open rule on y so a vertex exactly on the scanline is counted once.
      if (ay <= y !== by <= y) xs.push(ax + ((y - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const sx0 = Math.max(0, Math.ceil(xs[k]! * SS - 0.5));
      const sx1 = Math.min(gridW - 1, Math.ceil(xs[k + 1]! * SS - 0.5) - 1);
      if (sx1 >= sx0) fill(sy, sx0, sx1);
    }
  }
}

/** An RGB image being painted, float 0..1, HWC. */
export interface Canvas {
  width: number;
  height: number;
  rgb: Float32Array;
}

export function createCanvas(width: number, height: number): Canvas {
  return { width, height, rgb: new Float32Array(width * height * 3) };
}

/**
 * Paint a polygon onto the canvas with anti-aliased edges. `colourAt(px, py, out)` writes the colour of
 * pixel (px, py) into `out`. When `owner` (a SS-supersampled grid) is given, every covered sample is
 * set to `ownerId`, so later polygons overwrite the ownership of what they hide. Returns the number of
 * samples covered inside the image.
 */
export function paintPolygon(
  canvas: Canvas,
  poly: readonly Point[],
  colourAt: (px: number, py: number, out: Float32Array) => void,
  owner?: { grid: Int32Array; id: number },
): number {
  const gridW = canvas.width * SS;
  const gridH = canvas.height * SS;
  // Coverage counts per pixel over the polygon's bounding box.
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of poly) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  const px0 = Math.max(0, Math.floor(minX));
  const py0 = Math.max(0, Math.floor(minY));
  const px1 = Math.min(canvas.width - 1, Math.floor(maxX));
  const py1 = Math.min(canvas.height - 1, Math.floor(maxY));
  if (px1 < px0 || py1 < py0) return 0;
  const bw = px1 - px0 + 1;
  const counts = new Uint8Array(bw * (py1 - py0 + 1));
  let covered = 0;
  scanPolygon(poly, gridW, gridH, (sy, sx0, sx1) => {
    covered += sx1 - sx0 + 1;
    const row = ((sy / SS) | 0) - py0;
    for (let sx = sx0; sx <= sx1; sx++) counts[row * bw + ((sx / SS) | 0) - px0]!++;
    if (owner) owner.grid.fill(owner.id, sy * gridW + sx0, sy * gridW + sx1 + 1);
  });
  const full = SS * SS;
  const colour = new Float32Array(3);
  const rgb = canvas.rgb;
  for (let py = py0; py <= py1; py++) {
    for (let px = px0; px <= px1; px++) {
      const c = counts[(py - py0) * bw + px - px0]!;
      if (c === 0) continue;
      colourAt(px, py, colour);
      const a = c / full;
      const o = (py * canvas.width + px) * 3;
      rgb[o] = rgb[o]! * (1 - a) + colour[0]! * a;
      rgb[o + 1] = rgb[o + 1]! * (1 - a) + colour[1]! * a;
      rgb[o + 2] = rgb[o + 2]! * (1 - a) + colour[2]! * a;
    }
  }
  return covered;
}

/** Quantise a canvas to 8-bit RGB (round half up, clamped). */
export function toUint8(canvas: Canvas): Buffer {
  const out = Buffer.alloc(canvas.rgb.length);
  for (let i = 0; i < canvas.rgb.length; i++) {
    const v = canvas.rgb[i]!;
    out[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return out;
}

/** Signed shoelace area (positive for clockwise in image coordinates, y down). */
export function signedArea(poly: readonly Point[]): number {
  let s = 0;
  for (let i = 0, n = poly.length; i < n; i++) {
    const [ax, ay] = poly[i]!;
    const [bx, by] = poly[(i + 1) % n]!;
    s += ax * by - bx * ay;
  }
  return s / 2;
}

/** Squared distance from p to the segment ab. */
function segDist2(p: Point, a: Point, b: Point): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  let t = len2 === 0 ? 0 : ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2;
  t = Math.max(0, Math.min(1, t));
  const ex = a[0] + t * dx - p[0];
  const ey = a[1] + t * dy - p[1];
  return ex * ex + ey * ey;
}

/** Douglas-Peucker simplification of an open polyline (keeps both ends). */
function simplifyOpen(pts: readonly Point[], tol2: number): Point[] {
  const keep = new Uint8Array(pts.length);
  keep[0] = 1;
  keep[pts.length - 1] = 1;
  const stack: Array<[number, number]> = [[0, pts.length - 1]];
  while (stack.length > 0) {
    const [i0, i1] = stack.pop()!;
    let best = -1;
    let bestD = tol2;
    for (let i = i0 + 1; i < i1; i++) {
      const d = segDist2(pts[i]!, pts[i0]!, pts[i1]!);
      if (d > bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best >= 0) {
      keep[best] = 1;
      stack.push([i0, best], [best, i1]);
    }
  }
  return pts.filter((_, i) => keep[i] === 1);
}

/** Douglas-Peucker on a closed ring: split at the vertex farthest from the first one. */
export function simplifyRing(ring: readonly Point[], tolerance: number): Point[] {
  if (ring.length <= 4) return [...ring];
  const p0 = ring[0]!;
  let far = 0;
  let farD = -1;
  for (let i = 1; i < ring.length; i++) {
    const d = (ring[i]![0] - p0[0]) ** 2 + (ring[i]![1] - p0[1]) ** 2;
    if (d > farD) {
      farD = d;
      far = i;
    }
  }
  const tol2 = tolerance * tolerance;
  const a = simplifyOpen(ring.slice(0, far + 1), tol2);
  const b = simplifyOpen([...ring.slice(far), p0], tol2);
  return [...a.slice(0, -1), ...b.slice(0, -1)];
}

/**
 * Outer boundaries of the foreground of a binary mask (`mask[y * w + x]`), as closed rings of lattice
 * points (cell corners), clockwise in image coordinates. Holes are dropped, since a COCO polygon
 * cannot express them (annotators of real COCO ignore small holes too). Diagonal-only contact splits
 * components (4-connectivity).
 */
export function traceOuterRings(mask: Uint8Array, w: number, h: number): Point[][] {
  const at = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
  const W1 = w + 1;
  // Boundary edges run clockwise around each foreground cell; edge id = vertex * 4 + direction,
  // direction 0 right, 1 down, 2 left, 3 up. A vertex has at most two outgoing edges (a saddle).
  const present = new Uint8Array(W1 * (h + 1) * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!at(x, y)) continue;
      if (!at(x, y - 1)) present[(y * W1 + x) * 4 + 0] = 1;
      if (!at(x + 1, y)) present[(y * W1 + x + 1) * 4 + 1] = 1;
      if (!at(x, y + 1)) present[((y + 1) * W1 + x + 1) * 4 + 2] = 1;
      if (!at(x - 1, y)) present[((y + 1) * W1 + x) * 4 + 3] = 1;
    }
  }
  const DX = [1, 0, -1, 0];
  const DY = [0, 1, 0, -1];
  // The successor of an edge is unique: at a saddle, turn clockwise (stay on the same cell), which
  // keeps diagonal neighbours apart. So the edges split into disjoint cycles.
  const successor = (edge: number): number => {
    const dir = edge & 3;
    const v = edge >> 2;
    const nv = v + DY[dir]! * W1 + DX[dir]!;
    for (const turn of [1, 0, 3]) {
      const nd = (dir + turn) & 3;
      if (present[nv * 4 + nd] !== 0) return nv * 4 + nd;
    }
    throw new Error('unclosed boundary');
  };
  const rings: Point[][] = [];
  for (let start = 0; start < present.length; start++) {
    if (present[start] !== 1) continue;
    const ring: Point[] = [];
    let edge = start;
    let prevDir = -1;
    do {
      present[edge] = 2;
      const dir = edge & 3;
      const v = edge >> 2;
      if (dir !== prevDir) ring.push([v % W1, (v / W1) | 0]);
      prevDir = dir;
      edge = successor(edge);
    } while (edge !== start);
    // The start vertex is a corner only if the direction changes there.
    if ((start & 3) === prevDir) ring.shift();
    if (ring.length >= 3 && signedArea(ring) > 0) rings.push(ring);
  }
  return rings;
}

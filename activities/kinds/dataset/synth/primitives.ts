/**
 * The visual vocabulary of the synthetic data: 10 shapes x 10 textures x 10 colour families.
 *
 * Classification classes are (shape, texture) pairs (100 of them); detection classes reuse the same
 * pairs (a fixed list of 20, of which the first K are used) and the same per-class colour preference,
 * and detection scenes add unannotated distractors that share a shape or a texture with a class. So a
 * backbone pre-trained on the classification set has already learned exactly the features that
 * separate detection classes from each other and from distractors: the condition under which
 * pre-training can matter (shared/notes/trainer.md, section C).
 *
 * Everything here is a fixed table or a pure function; no randomness.
 */
import { hash32 } from '../../../../infra/prng';

/** A point [x, y]. */
export type Point = [number, number];

/** Shapes, as polygons in a unit frame (inside the circle of radius 1, centred on 0). */
export const SHAPES = [
  'circle',
  'square',
  'triangle',
  'diamond',
  'pentagon',
  'hexagon',
  'star',
  'cross',
  'crescent',
  'arrow',
] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Textures: 0 everywhere means the primary colour, 1 the secondary colour. */
export const TEXTURES = [
  'solid',
  'striped',
  'checkered',
  'dotted',
  'gridded',
  'ringed',
  'graded',
  'speckled',
  'zigzag',
  'split',
] as const;
export type TextureName = (typeof TEXTURES)[number];

/** Colour families: base RGB in 0..1. */
export const COLOURS: ReadonlyArray<{ name: string; rgb: readonly [number, number, number] }> = [
  { name: 'red', rgb: [0.86, 0.12, 0.12] },
  { name: 'orange', rgb: [0.95, 0.52, 0.08] },
  { name: 'yellow', rgb: [0.93, 0.85, 0.15] },
  { name: 'green', rgb: [0.18, 0.68, 0.2] },
  { name: 'teal', rgb: [0.1, 0.62, 0.62] },
  { name: 'blue', rgb: [0.15, 0.3, 0.88] },
  { name: 'purple', rgb: [0.52, 0.2, 0.78] },
  { name: 'pink', rgb: [0.95, 0.45, 0.7] },
  { name: 'brown', rgb: [0.5, 0.3, 0.14] },
  { name: 'grey', rgb: [0.55, 0.55, 0.58] },
];

function regular(n: number, phase: number, radius = 1): Point[] {
  const pts: Point[] = [];
  for (let i = 0; i < n; i++) {
    const a = phase + (2 * Math.PI * i) / n;
    pts.push([radius * Math.cos(a), radius * Math.sin(a)]);
  }
  return pts;
}

function buildShape(name: ShapeName): Point[] {
  switch (name) {
    case 'circle':
      return regular(32, 0, 0.95);
    case 'square':
      return [
        [-0.75, -0.75],
        [0.75, -0.75],
        [0.75, 0.75],
        [-0.75, 0.75],
      ];
    case 'triangle':
      return regular(3, -Math.PI / 2, 1);
    case 'diamond':
      return [
        [0, -1],
        [0.62, 0],
        [0, 1],
        [-0.62, 0],
      ];
    case 'pentagon':
      return regular(5, -Math.PI / 2, 0.97);
    case 'hexagon':
      return regular(6, 0, 0.95);
    case 'star': {
      const pts: Point[] = [];
      for (let i = 0; i < 10; i++) {
        const r = i % 2 === 0 ? 1 : 0.42;
        const a = -Math.PI / 2 + (Math.PI * i) / 5;
        pts.push([r * Math.cos(a), r * Math.sin(a)]);
      }
      return pts;
    }
    case 'cross': {
      const a = 0.3;
      const b = 0.9;
      return [
        [-a, -b],
        [a, -b],
        [a, -a],
        [b, -a],
        [b, a],
        [a, a],
        [a, b],
        [-a, b],
        [-a, a],
        [-b, a],
        [-b, -a],
        [-a, -a],
      ];
    }
    case 'crescent': {
      // Outer arc of radius 0.95 from -120 to 120 degrees, back along an inner arc of a shifted circle.
      const pts: Point[] = [];
      for (let i = 0; i <= 16; i++) {
        const a = (-2 * Math.PI) / 3 + ((4 * Math.PI) / 3) * (i / 16);
        pts.push([0.95 * Math.cos(a), 0.95 * Math.sin(a)]);
      }
      const ex = 0.95 * Math.cos((2 * Math.PI) / 3);
      const ey = 0.95 * Math.sin((2 * Math.PI) / 3);
      // Inner arc: circle through both tips, centred on the x axis at cx with radius r.
      const cx = -0.75;
      const r = Math.hypot(ex - cx, ey);
      const a0 = Math.atan2(ey, ex - cx);
      for (let i = 1; i < 16; i++) {
        const a = a0 - (2 * a0 * i) / 16;
        pts.push([cx + r * Math.cos(a), r * Math.sin(a)]);
      }
      return pts;
    }
    case 'arrow':
      return [
        [-0.95, -0.28],
        [0.15, -0.28],
        [0.15, -0.7],
        [0.95, 0],
        [0.15, 0.7],
        [0.15, 0.28],
        [-0.95, 0.28],
      ];
  }
}

/** Unit-frame polygon of each shape, built once. */
export const SHAPE_POLYGONS: ReadonlyArray<readonly Point[]> = SHAPES.map(buildShape);

const fract = (v: number): number => v - Math.floor(v);

/**
 * Texture value in [0, 1] at a point of the object's unit frame (u, v in about [-1, 1]). `freq`
 * scales the pattern (periods per unit), so the same texture reads the same at every object size.
 */
export function textureValue(texture: number, u: number, v: number, freq: number): number {
  switch (TEXTURES[texture]) {
    case 'solid':
      return 0;
    case 'striped':
      return fract(v * freq) < 0.5 ? 0 : 1;
    case 'checkered':
      return (Math.floor(u * freq) + Math.floor(v * freq)) & 1 ? 1 : 0;
    case 'dotted': {
      const du = fract(u * freq) - 0.5;
      const dv = fract(v * freq) - 0.5;
      return du * du + dv * dv < 0.09 ? 1 : 0;
    }
    case 'gridded':
      return fract(u * freq) < 0.22 || fract(v * freq) < 0.22 ? 1 : 0;
    case 'ringed':
      return fract(Math.hypot(u, v) * freq) < 0.5 ? 0 : 1;
    case 'graded':
      return Math.min(1, Math.max(0, (u + 1) / 2));
    case 'speckled': {
      // A hashed lattice: pseudo-random but a pure function of the cell.
      const cu = Math.floor(u * freq * 2.5);
      const cv = Math.floor(v * freq * 2.5);
      return ((Math.imul(cu, 73856093) ^ Math.imul(cv, 19349663)) >>> 0) % 3 === 0 ? 1 : 0;
    }
    case 'zigzag': {
      const w = Math.abs(fract(u * freq) - 0.5) * 0.8;
      return fract(v * freq * 0.8 + w) < 0.5 ? 0 : 1;
    }
    case 'split':
      return u + 0.3 * v > 0 ? 1 : 0;
    default:
      return 0;
  }
}

/** A (shape, texture) pair: the unit of both classification and detection classes. */
export interface ClassSpec {
  shape: number;
  texture: number;
  /** Index into {@link COLOURS} this class usually takes. */
  colour: number;
  /** Human-readable name, e.g. `striped star`. */
  name: string;
}

function classSpec(shape: number, texture: number): ClassSpec {
  const shapeName = SHAPES[shape]!;
  const textureName = TEXTURES[texture]!;
  return {
    shape,
    texture,
    colour: hash32(`${shapeName}/${textureName}`) % COLOURS.length,
    name: textureName === 'solid' ? `solid ${shapeName}` : `${textureName} ${shapeName}`,
  };
}

/**
 * The 100 classification classes, in an order where every block of 10 consecutive classes holds each
 * shape and each texture once (a Latin square), so a run with fewer classes still covers all
 * primitives.
 */
export const CLASSIFICATION_CLASSES: readonly ClassSpec[] = Array.from({ length: 100 }, (_, k) => {
  const shape = k % 10;
  const texture = (Math.floor(k / 10) + k) % 10;
  return classSpec(shape, texture);
});

/** The fake WordNet id of classification class k (`n9` + 7 digits, like ImageNet's `n01440764`). */
export function wnidOf(k: number): string {
  return `n9${String(k).padStart(7, '0')}`;
}

/**
 * The detection classes: (shape, texture) pairs that are also classification classes. The first K of
 * this list are used. Shapes and textures repeat across entries (solid/striped stars, striped circles
 * and diamonds), so telling classes apart needs both shape and texture features.
 */
const DETECTION_PAIRS: ReadonlyArray<[ShapeName, TextureName]> = [
  ['star', 'solid'],
  ['circle', 'striped'],
  ['triangle', 'checkered'],
  ['square', 'dotted'],
  ['cross', 'solid'],
  ['hexagon', 'ringed'],
  ['diamond', 'striped'],
  ['crescent', 'solid'],
  ['arrow', 'gridded'],
  ['pentagon', 'checkered'],
  ['circle', 'dotted'],
  ['star', 'striped'],
  ['square', 'graded'],
  ['triangle', 'solid'],
  ['hexagon', 'speckled'],
  ['diamond', 'zigzag'],
  ['crescent', 'split'],
  ['arrow', 'solid'],
  ['pentagon', 'ringed'],
  ['cross', 'checkered'],
];

/** Index in {@link CLASSIFICATION_CLASSES} of a (shape, texture) pair. */
export function classificationIndexOf(shape: number, texture: number): number {
  const k = CLASSIFICATION_CLASSES.findIndex((c) => c.shape === shape && c.texture === texture);
  if (k < 0) throw new RangeError(`no classification class for shape ${shape}, texture ${texture}`);
  return k;
}

/** All 20 detection classes; `dataset.synth` uses the first `classes` of them. */
export const DETECTION_CLASSES: readonly ClassSpec[] = DETECTION_PAIRS.map(([s, t]) =>
  classSpec(SHAPES.indexOf(s), TEXTURES.indexOf(t)),
);

/** Maximum number of detection classes. */
export const MAX_DETECTION_CLASSES = DETECTION_CLASSES.length;

/** COCO/VOC category name of a detection class, e.g. `striped_circle`. */
export function detectionCategoryName(spec: ClassSpec): string {
  return spec.name.replace(/ /g, '_');
}

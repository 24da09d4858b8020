/**
 * A synthetic COCO val2017-sized bbox case for bench/eval.ts: 5,000 images, ~38,000 GT boxes over 80
 * categories with COCO-like size mix (about 41% small, 34% medium, 25% large; ~1% crowd), and exactly 100
 * detections per image: jittered copies of the GT (true positives at various IoUs, wrong classes) plus
 * false positives, with detector-like scores rounded to 5 decimals.
 */
function rngFrom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SynthCase {
  gt: { images: object[]; annotations: object[]; categories: object[] };
  dt: object[];
}

export function synthVal2017(seed = 2017, nImages = 5000, gtPerImage = 7.3, detsPerImage = 100): SynthCase {
  const rng = rngFrom(seed);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  const categories = Array.from({ length: 80 }, (_, i) => ({
    id: i + 1 + Math.floor(i / 10),
    name: `class${i}`,
  }));
  const catIds = categories.map((c) => c.id);
  const images: object[] = [];
  const annotations: object[] = [];
  const dt: object[] = [];
  let annId = 1;
  for (let im = 0; im < nImages; im++) {
    const id = 139 + im * 97;
    const W = 640;
    const H = 360 + Math.floor(rng() * 280);
    images.push({ id, width: W, height: H, file_name: `${String(id).padStart(12, '0')}.jpg` });
    // Poisson-ish number of objects with the right mean
    const nGt = Math.max(0, Math.round(gtPerImage + (rng() + rng() + rng() - 1.5) * 2 * gtPerImage * 0.8));
    const imgCats = Array.from({ length: 1 + Math.floor(rng() * 4) }, () => catIds[Math.floor(rng() * 80)]!);
    const gts: [number, number, number, number, number][] = [];
    for (let g = 0; g < nGt; g++) {
      const u = rng();
      const side = u < 0.41 ? 4 + rng() * 27 : u < 0.75 ? 32 + rng() * 63 : 96 + rng() * 400;
      const ar = Math.exp((rng() - 0.5) * 1.2);
      const w = Math.min(W - 1, side * ar);
      const h = Math.min(H - 1, side / ar);
      const x = rng() * (W - w);
      const y = rng() * (H - h);
      const cat = imgCats[Math.floor(rng() * imgCats.length)]!;
      const crowd = rng() < 0.01 ? 1 : 0;
      annotations.push({
        id: annId++,
        image_id: id,
        category_id: cat,
        bbox: [r2(x), r2(y), r2(w), r2(h)],
        area: r2(w * h * (0.55 + rng() * 0.35)),
        iscrowd: crowd,
      });
      gts.push([x, y, w, h, cat]);
    }
    let nd = 0;
    const push = (x: number, y: number, w: number, h: number, cat: number, s: number) => {
      dt.push({
        image_id: id,
        category_id: cat,
        bbox: [r2(x), r2(y), r2(w), r2(h)],
        score: Math.round(s * 1e5) / 1e5,
      });
      nd++;
    };
    for (const [x, y, w, h, cat] of gts) {
      const copies = 1 + Math.floor(rng() * 3);
      for (let c = 0; c < copies && nd < detsPerImage; c++) {
        const j = c === 0 ? 0.08 : 0.3;
        const wrong = rng() < 0.08;
        push(
          x + (rng() - 0.5) * w * j,
          y + (rng() - 0.5) * h * j,
          w * (1 + (rng() - 0.5) * j),
          h * (1 + (rng() - 0.5) * j),
          wrong ? catIds[Math.floor(rng() * 80)]! : cat,
          c === 0 ? 0.3 + rng() * 0.7 : rng() * 0.6,
        );
      }
    }
    while (nd < detsPerImage) {
      const side = 8 + rng() * 300;
      const w = Math.min(W - 1, side * Math.exp((rng() - 0.5) * 1.2));
      const h = Math.min(H - 1, side * Math.exp((rng() - 0.5) * 1.2));
      const cat =
        rng() < 0.6 ? imgCats[Math.floor(rng() * imgCats.length)]! : catIds[Math.floor(rng() * 80)]!;
      push(rng() * (W - w), rng() * (H - h), w, h, cat, rng() * rng() * 0.5);
    }
  }
  return { gt: { images, annotations, categories }, dt };
}

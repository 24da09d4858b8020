/**
 * Contact sheets: a PNG grid of sample images, upscaled with nearest-neighbour so pixels stay visible,
 * with boxes and labels drawn from an SVG overlay, so a person can check what the generator makes.
 * Text needs a system font (fontconfig); without one the boxes still show. The sheet is a preview,
 * not part of any dataset artifact, so font differences between machines never change a digest.
 */
import { COLOURS } from './primitives';

/** One tile of a contact sheet. */
export interface SheetTile {
  /** 8-bit RGB, HWC. */
  pixels: Buffer;
  width: number;
  height: number;
  /** Caption under the tile. */
  caption?: string;
  /** Boxes [x, y, w, h] in the tile's pixels. */
  boxes?: Array<{ bbox: readonly number[]; label: string; colour: number; dashed?: boolean }>;
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const hex = (rgb: readonly number[]): string =>
  `#${rgb
    .map((v) =>
      Math.round(v * 255)
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`;

/** Render `tiles` into one PNG, `columns` per row, each tile scaled by `scale`. */
export async function renderContactSheet(
  tiles: readonly SheetTile[],
  options: { columns?: number; scale?: number; title?: string } = {},
): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const columns = Math.max(1, Math.min(options.columns ?? 8, tiles.length));
  const scale = options.scale ?? Math.max(1, Math.round(160 / Math.max(...tiles.map((t) => t.width))));
  const cellW = Math.max(...tiles.map((t) => t.width)) * scale;
  const cellH = Math.max(...tiles.map((t) => t.height)) * scale;
  const gap = 6;
  const captionH = 16;
  const titleH = options.title ? 24 : 0;
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * (cellW + gap) + gap;
  const height = titleH + rows * (cellH + captionH + gap) + gap;
  const layers: Array<{ input: Buffer; left: number; top: number }> = [];
  const svg: string[] = [];
  if (options.title)
    svg.push(
      `<text x="${gap}" y="17" font-family="sans-serif" font-size="14" fill="#222">${escapeXml(options.title)}</text>`,
    );
  for (const [i, tile] of tiles.entries()) {
    const left = gap + (i % columns) * (cellW + gap);
    const top = titleH + gap + Math.floor(i / columns) * (cellH + captionH + gap);
    const scaled = await sharp(tile.pixels, { raw: { width: tile.width, height: tile.height, channels: 3 } })
      .resize(tile.width * scale, tile.height * scale, { kernel: 'nearest' })
      .png()
      .toBuffer();
    layers.push({ input: scaled, left, top });
    for (const box of tile.boxes ?? []) {
      const [x, y, w, h] = box.bbox as [number, number, number, number];
      const colour = hex(COLOURS[box.colour % COLOURS.length]!.rgb);
      svg.push(
        `<rect x="${left + x * scale}" y="${top + y * scale}" width="${w * scale}" height="${h * scale}" fill="none" stroke="${colour}" stroke-width="2"${box.dashed ? ' stroke-dasharray="4 3"' : ''}/>`,
        `<rect x="${left + x * scale}" y="${Math.max(top, top + y * scale - 11)}" width="${box.label.length * 5.6 + 4}" height="11" fill="${colour}" fill-opacity="0.85"/>`,
        `<text x="${left + x * scale + 2}" y="${Math.max(top, top + y * scale - 11) + 9}" font-family="sans-serif" font-size="9" fill="#fff">${escapeXml(box.label)}</text>`,
      );
    }
    if (tile.caption)
      svg.push(
        `<text x="${left}" y="${top + cellH + 12}" font-family="sans-serif" font-size="11" fill="#222">${escapeXml(tile.caption)}</text>`,
      );
  }
  const overlay = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join('')}</svg>`,
  );
  return sharp({ create: { width, height, channels: 3, background: '#f4f4f4' } })
    .composite([...layers, { input: overlay, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

/**
 * Image decoding for training and evaluation, with sharp (libvips): decode any JPEG/PNG/WebP, convert
 * to 3-channel sRGB (greyscale and CMYK files included, alpha dropped), optionally flip horizontally,
 * resize (letterboxed: aspect kept, centred, padded) or stretch, and return Float32 RGB in 0..1, HWC.
 *
 * Corrupt-image policy: a file that is missing, unreadable, truncated or not an image throws
 * AblateError `CorruptImage` naming the path. Batch readers take `onCorrupt`: `'fail'` (default)
 * rethrows; `'skip'` leaves the image out, reports it in `skipped` and logs a warning: never silent.
 */
import { AblateError, ErrorType, errorMessage } from '../../../infra/errors';

/** Options of {@link readImageRgb}. */
export interface ReadImageOptions {
  /** Output side (square). Without it the image keeps its size. */
  size?: number;
  /** Keep the aspect ratio and pad (true), or stretch to size x size (false). @default true */
  letterbox?: boolean;
  /** Mirror horizontally (before resizing; boxes map through {@link mapBox}). @default false */
  flip?: boolean;
  /** Padding colour, 0..1 per channel. @default [0.5, 0.5, 0.5] */
  fill?: [number, number, number];
}

/** A decoded image plus what is needed to map source coordinates onto it. */
export interface RgbImage {
  /** HWC, RGB, 0..1. */
  data: Float32Array;
  width: number;
  height: number;
  /** Source size. */
  srcWidth: number;
  srcHeight: number;
  /** Output pixels per source pixel, per axis (equal when letterboxed). */
  scaleX: number;
  scaleY: number;
  /** Padding on the left / top, in output pixels. */
  padX: number;
  padY: number;
  flipped: boolean;
}

/** Geometry of a resize: where the source lands in the output. */
export function letterboxGeometry(
  srcWidth: number,
  srcHeight: number,
  size: number,
  letterbox = true,
): { width: number; height: number; padX: number; padY: number; scaleX: number; scaleY: number } {
  if (!letterbox)
    return { width: size, height: size, padX: 0, padY: 0, scaleX: size / srcWidth, scaleY: size / srcHeight };
  const scale = size / Math.max(srcWidth, srcHeight);
  const width = Math.max(1, Math.min(size, Math.round(srcWidth * scale)));
  const height = Math.max(1, Math.min(size, Math.round(srcHeight * scale)));
  return {
    width,
    height,
    padX: Math.floor((size - width) / 2),
    padY: Math.floor((size - height) / 2),
    scaleX: width / srcWidth,
    scaleY: height / srcHeight,
  };
}

/** Map a source box [x, y, w, h] to output coordinates (flip applied first, as in readImageRgb). */
export function mapBox(
  bbox: readonly [number, number, number, number] | readonly number[],
  image: Pick<RgbImage, 'srcWidth' | 'scaleX' | 'scaleY' | 'padX' | 'padY' | 'flipped'>,
): [number, number, number, number] {
  const [x, y, w, h] = bbox as [number, number, number, number];
  const sx = image.flipped ? image.srcWidth - x - w : x;
  return [sx * image.scaleX + image.padX, y * image.scaleY + image.padY, w * image.scaleX, h * image.scaleY];
}

/** The error for an image that cannot be decoded. */
export function corruptImage(path: string, reason: string, cause?: unknown): AblateError {
  return new AblateError(ErrorType.CorruptImage, `cannot decode image ${path}: ${reason}`, { cause });
}

/**
 * Decode one image to Float32 RGB. `input` is a path or the file's bytes (then `label` names it in
 * errors). Throws CorruptImage for anything that is not a complete, decodable image.
 */
export async function readImageRgb(
  input: string | Buffer,
  options: ReadImageOptions = {},
  label = typeof input === 'string' ? input : '<buffer>',
): Promise<RgbImage> {
  const { default: sharp } = await import('sharp');
  let meta: { width?: number; height?: number };
  // failOn 'truncated' makes a JPEG cut short an error instead of a grey bottom half.
  const open = () => sharp(input, { failOn: 'truncated' });
  try {
    meta = await open().metadata();
  } catch (err) {
    throw corruptImage(label, describe(err), err);
  }
  const srcWidth = meta.width ?? 0;
  const srcHeight = meta.height ?? 0;
  if (srcWidth <= 0 || srcHeight <= 0) throw corruptImage(label, 'no image dimensions');
  const geo = options.size
    ? letterboxGeometry(srcWidth, srcHeight, options.size, options.letterbox ?? true)
    : { width: srcWidth, height: srcHeight, padX: 0, padY: 0, scaleX: 1, scaleY: 1 };
  let pipeline = open().removeAlpha().toColourspace('srgb');
  if (options.flip) pipeline = pipeline.flop();
  if (geo.width !== srcWidth || geo.height !== srcHeight)
    pipeline = pipeline.resize(geo.width, geo.height, { fit: 'fill' });
  const size = options.size;
  if (size && (geo.width !== size || geo.height !== size)) {
    const fill = options.fill ?? [0.5, 0.5, 0.5];
    pipeline = pipeline.extend({
      left: geo.padX,
      top: geo.padY,
      right: size - geo.width - geo.padX,
      bottom: size - geo.height - geo.padY,
      background: {
        r: Math.round(fill[0] * 255),
        g: Math.round(fill[1] * 255),
        b: Math.round(fill[2] * 255),
      },
    });
  }
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw corruptImage(label, describe(err), err);
  }
  if (raw.info.channels !== 3)
    throw corruptImage(label, `decoded to ${raw.info.channels} channels, expected 3`);
  const data = new Float32Array(raw.data.length);
  for (let i = 0; i < raw.data.length; i++) data[i] = raw.data[i]! / 255;
  return {
    data,
    width: raw.info.width,
    height: raw.info.height,
    srcWidth,
    srcHeight,
    scaleX: geo.scaleX,
    scaleY: geo.scaleY,
    padX: geo.padX,
    padY: geo.padY,
    flipped: options.flip ?? false,
  };
}

function describe(err: unknown): string {
  const m = errorMessage(err).split('\n')[0]!.trim();
  return m
    .replace(/^Input file is missing:.*/, 'file not found')
    .replace(
      /^Input file contains unsupported image format$/,
      'not an image (unsupported or unknown format)',
    );
}

/** What to do with an image that cannot be decoded. */
export type CorruptImagePolicy = 'fail' | 'skip';

/** A batch of decoded images in one NHWC tensor-ready array. */
export interface RgbBatch {
  /** N x size x size x 3, 0..1. Skipped images are left out (N = items.length - skipped.length). */
  data: Float32Array;
  /** One entry per image in `data`, in order. */
  images: Array<Omit<RgbImage, 'data'> & { index: number }>;
  /** Items left out under the `skip` policy, with the reason. */
  skipped: Array<{ index: number; path: string; reason: string }>;
}

/**
 * Decode a batch of images at one square size, `concurrency` at a time (sharp decodes on libuv's
 * thread pool, so 2 matches a 2-core machine). Memory is the batch itself.
 */
export async function readImageBatch(
  items: ReadonlyArray<{ path: string; flip?: boolean }>,
  options: Omit<ReadImageOptions, 'flip' | 'size'> & {
    size: number;
    concurrency?: number;
    onCorrupt?: CorruptImagePolicy;
    warn?: (message: string) => void;
  },
): Promise<RgbBatch> {
  const results: Array<RgbImage | { error: AblateError }> = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      try {
        results[i] = await readImageRgb(item.path, { ...options, flip: item.flip ?? false });
      } catch (err) {
        if (err instanceof AblateError && err.type === ErrorType.CorruptImage) results[i] = { error: err };
        else {
          next = items.length; // stop the other workers
          throw err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  const per = options.size * options.size * 3;
  const good = results.filter((r): r is RgbImage => !('error' in r));
  const batch: RgbBatch = { data: new Float32Array(good.length * per), images: [], skipped: [] };
  let k = 0;
  for (const [index, r] of results.entries()) {
    if ('error' in r) {
      if ((options.onCorrupt ?? 'fail') === 'fail') throw r.error;
      batch.skipped.push({ index, path: items[index]!.path, reason: r.error.message });
      (options.warn ?? ((m: string) => console.error(`[warn] ${m}`)))(`skipping ${r.error.message}`);
      continue;
    }
    const { data, ...meta } = r;
    batch.data.set(data, k * per);
    batch.images.push({ ...meta, index });
    k++;
  }
  return batch;
}

/** Result of {@link checkImageFiles}. */
export interface ImageCheckResult {
  checked: number;
  /** Images that failed under the `skip` policy. */
  skipped: Array<{ path: string; reason: string }>;
}

/**
 * Fully decode every image (a truncated JPEG fails), `concurrency` at a time, and compare its size with
 * the annotation's `width`/`height` when given. Policy `fail` throws CorruptImage (path in the message)
 * at the first bad image; `skip` collects them and warns about each.
 */
export async function checkImageFiles(
  entries: ReadonlyArray<{ path: string; width?: number; height?: number }>,
  options: {
    onCorrupt?: CorruptImagePolicy;
    concurrency?: number;
    warn?: (message: string) => void;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<ImageCheckResult> {
  const { default: sharp } = await import('sharp');
  const result: ImageCheckResult = { checked: 0, skipped: [] };
  const warn = options.warn ?? ((m: string) => console.error(`[warn] ${m}`));
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const entry = entries[next++]!;
      let problem: AblateError | undefined;
      try {
        const { info } = await sharp(entry.path, { failOn: 'truncated' })
          .raw()
          .toBuffer({ resolveWithObject: true });
        if (
          (entry.width !== undefined && info.width !== entry.width) ||
          (entry.height !== undefined && info.height !== entry.height)
        )
          problem = corruptImage(
            entry.path,
            `size ${info.width}x${info.height} differs from the annotation's ${entry.width}x${entry.height}`,
          );
      } catch (err) {
        problem = corruptImage(entry.path, describe(err), err);
      }
      if (problem) {
        if ((options.onCorrupt ?? 'fail') === 'fail') {
          next = entries.length; // stop the other workers
          throw problem;
        }
        result.skipped.push({ path: entry.path, reason: problem.message });
        warn(`skipping ${problem.message}`);
      }
      result.checked++;
      options.onProgress?.(++done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  return result;
}

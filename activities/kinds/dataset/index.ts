/**
 * Datasets: loaders for the formats researchers have on disk, a seeded synthetic generator that writes
 * those same formats, deterministic subsets, presets and validation.
 *
 * API for training / evaluation code (stable; import from 'activities/dataset/index'):
 *
 *   COCO     loadCocoInstances(file, { segmentation?, validate? }) -> CocoDataset
 *              streamed (448 MB train2017 is fine); throws InvalidInput listing every bad record,
 *              EmptyDataset for no images, DatasetNotFound for a missing file.
 *            scanCocoRaw(file, { image, annotation, category, member })  record-by-record, raw bytes too
 *   VOC      loadVocDevkit(root, year, imageSet, { classes? }) -> VocDataset (1-based inclusive boxes)
 *            vocToCoco(voc) -> CocoDataset (Detectron2's box conversion; difficult -> iscrowd 1)
 *   ImageNet listImagenetFolder(dir) -> { classes, names?, items: [{ path, label }] }
 *   Images   readImageRgb(path, { size, letterbox = true, flip, fill }) -> RgbImage
 *              { data: Float32Array HWC 0..1, width, height, scaleX, scaleY, padX, padY, flipped, src* }
 *            mapBox(bbox, image) maps a source [x, y, w, h] into that image (flip included)
 *            readImageBatch(items, { size, concurrency, onCorrupt }) -> { data NHWC, images, skipped }
 *              CorruptImage (path in the message) fails the batch, or with onCorrupt 'skip' is
 *              left out, listed in `skipped` and logged: never silent.
 *   Synth    generateCocoDetection / generateVocDetection / generateImagenetClassification(dir, opts)
 *            renderDetectionScene(seed, split, index, opts): the ground truth of one synthetic image
 *   Splits   writeCocoSubset(source, dest, { count | fraction, seed, nestedIn }) / writeVocSubset(...)
 *            selectSubset(candidates, n, seed): the selection rule alone
 *   Presets  PRESETS, getPreset(name), checkPresetCounts(preset, found)
 *            scaledAreaRanges(size): COCO's small/medium/large thresholds for size x size images
 *   Checks   checkImageFiles(entries, { onCorrupt }) decodes every image (dims compared)
 *
 * Step kinds: `dataset.synth`, `dataset.split` (see synth-kind.ts, split-kind.ts).
 */
export {
  checkCocoReferences,
  cocoToJson,
  loadCocoInstances,
  scanCocoRaw,
  type CocoAnnotation,
  type CocoCategory,
  type CocoDataset,
  type CocoImage,
  type CocoRle,
  type CocoSegmentation,
  type LoadCocoOptions,
} from './coco';
export {
  loadVocDevkit,
  readImageSet,
  resolveVocRoot,
  vocToCoco,
  VOC_CLASSES,
  type LoadVocOptions,
  type VocDataset,
  type VocImage,
  type VocObject,
} from './voc';
export { listImagenetFolder, type ImagenetFolder } from './imagenet';
export {
  checkImageFiles,
  corruptImage,
  letterboxGeometry,
  mapBox,
  readImageBatch,
  readImageRgb,
  type CorruptImagePolicy,
  type ReadImageOptions,
  type RgbBatch,
  type RgbImage,
} from './images';
export {
  cocoFileName,
  cocoImageId,
  generateCocoDetection,
  generateImagenetClassification,
  generateVocDetection,
  COCO_VAL_ID_BASE,
  type ClassificationSummary,
  type ClassificationSynthOptions,
  type DetectionSynthOptions,
  type SynthSummary,
} from './synth/generate';
export {
  renderClassificationImage,
  renderDetectionScene,
  type DetectionScene,
  type DetectionSceneOptions,
  type SceneInstance,
} from './synth/scene';
export { CLASSIFICATION_CLASSES, DETECTION_CLASSES, detectionCategoryName, wnidOf } from './synth/primitives';
export {
  resolveCount,
  selectSubset,
  splitPriority,
  writeCocoSubset,
  writeVocSubset,
  type SplitCandidate,
  type SubsetSize,
  type SubsetSummary,
} from './split';
export { checkPresetCounts, getPreset, PRESETS, scaledAreaRanges, type DatasetPreset } from './presets';
export { createRng, type Rng } from '../../../infra/prng';
export { BBOX_TOLERANCE_PX, Issues } from './validate';

/**
 * `dataset.voc2coco`: PASCAL VOC image sets (e.g. VOC2007 trainval + VOC2012 train, as the paper trains)
 * as one COCO instances file, so the detector and the COCO/VOC evaluators read VOC data. Boxes follow
 * Detectron2's conversion (1-based inclusive corners to 0-based xywh); `difficult` objects become crowd
 * regions (ignored in training and evaluation). Categories are the 20 VOC classes in their standard
 * order by default (or a given list, or those of the first set), the same for every set converted. `file_name`s are relative to the devkit
 * directory given, so that directory (a tree artifact) serves as the image directory.
 */
import { relative } from 'node:path';
import { loadVocDevkit, VOC_CLASSES, vocToCoco } from './voc';
import { datasetVoc2CocoKind } from '../../../infra/kinds/dataset-voc2coco';
import { implementKind } from '../../runtime/step-kind';

/** `datasetVoc2Coco`'s implementation (its descriptor: infra/kinds). */
export const datasetVoc2Coco = implementKind(datasetVoc2CocoKind, import.meta.url, async (params, ctx) => {
  const root = await ctx.fetch(params.devkit);
  const images: Array<Record<string, unknown>> = [];
  const annotations: Array<Record<string, unknown>> = [];
  let categories: Array<{ id: number; name: string }> = [];
  const choice = params.classes ?? 'voc20';
  let classes: string[] | undefined =
    choice === 'voc20' ? [...VOC_CLASSES] : choice === 'found' ? undefined : choice;
  for (const set of params.sets) {
    const voc = await loadVocDevkit(root, set.year, set.imageSet, classes ? { classes } : {});
    classes ??= voc.classes;
    const coco = vocToCoco(voc);
    categories = coco.categories;
    const offset = images.length;
    coco.images.forEach((im, i) => {
      images.push({
        ...im,
        id: offset + i + 1,
        file_name: relative(root, voc.images[i]!.path).split('\\').join('/'),
      });
    });
    for (const a of coco.annotations)
      annotations.push({ ...a, id: annotations.length + 1, image_id: a.image_id + offset });
    ctx.heartbeat({ message: `converted VOC${set.year} ${set.imageSet}: ${coco.images.length} images` });
  }
  const annotationsRef = await ctx.publishBytes(JSON.stringify({ images, annotations, categories }), {
    mediaType: 'application/json',
  });
  return { annotations: annotationsRef, images: images.length, objects: annotations.length };
});

/**
 * Every step kind's descriptor, in the order `ablate kinds` lists them. The compiler reads kinds from
 * here; the step runtime pairs each with its implementation (activities/runtime/registry.ts).
 */
import type { KindDescriptor } from './descriptor';
import { datasetImportKind } from './dataset-import';
import { datasetSplitKind } from './dataset-split';
import { datasetSynthKind } from './dataset-synth';
import { datasetVoc2CocoKind } from './dataset-voc2coco';
import { evalCocoKind, evalVocKind } from './eval';
import { reportTableKind } from './report';
import { reportFindingsKind } from './report-findings';
import { reportHtmlKind } from './report-html';
import { trainDetectorKind } from './train-detector';
import { trainPretrainKind } from './train-pretrain';
import { utilConcatKind, utilFailKind, utilHashKind, utilNoopKind, utilWriteKind } from './util';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own params type
export type AnyKindDescriptor = KindDescriptor<any>;

/** Every kind's descriptor. */
export const kindDescriptors: readonly AnyKindDescriptor[] = [
  utilWriteKind,
  utilHashKind,
  utilConcatKind,
  utilFailKind,
  utilNoopKind,
  reportTableKind,
  reportHtmlKind,
  reportFindingsKind,
  evalCocoKind,
  evalVocKind,
  datasetSynthKind,
  datasetSplitKind,
  datasetImportKind,
  datasetVoc2CocoKind,
  trainPretrainKind,
  trainDetectorKind,
];

const byName = new Map(kindDescriptors.map((k) => [k.name, k]));

/** The descriptor of the kind called `name`, or undefined. */
export function getKindDescriptor(name: string): AnyKindDescriptor | undefined {
  return byName.get(name);
}

/** All kind names, sorted. */
export function kindNames(): string[] {
  return [...byName.keys()].sort();
}

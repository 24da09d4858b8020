/**
 * The one registry of step kinds. To add a kind: write it (see step-kind.ts) and list it here.
 * Kind modules import heavy libraries lazily, so importing this registry is cheap.
 */
import { evalCoco, evalVoc } from '../kinds/eval/kinds';
import { datasetImport } from '../kinds/dataset/import-kind';
import { datasetSplit } from '../kinds/dataset/split-kind';
import { datasetSynth } from '../kinds/dataset/synth-kind';
import { datasetVoc2Coco } from '../kinds/dataset/voc2coco-kind';
import type { StepKind } from './step-kind';
import { trainPretrain } from '../kinds/train/pretrain';
import { trainDetector } from '../kinds/train/train-detector';
import { reportTable } from '../kinds/report/table';
import { utilConcat, utilFail, utilHash, utilNoop, utilWrite } from '../kinds/util/index';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own params type
type AnyStepKind = StepKind<any>;

/** Every step kind, in the order `ablate kinds` lists them. */
export const stepKinds: readonly AnyStepKind[] = [
  utilWrite,
  utilHash,
  utilConcat,
  utilFail,
  utilNoop,
  reportTable,
  evalCoco,
  evalVoc,
  datasetSynth,
  datasetSplit,
  datasetImport,
  datasetVoc2Coco,
  trainPretrain,
  trainDetector,
];

const byName = new Map(stepKinds.map((k) => [k.name, k]));

/** The kind called `name`, or undefined. */
export function getStepKind(name: string): AnyStepKind | undefined {
  return byName.get(name);
}

/** All kind names, sorted. */
export function stepKindNames(): string[] {
  return [...byName.keys()].sort();
}

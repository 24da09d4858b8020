/**
 * The step kinds this worker can run: each descriptor of infra/kinds paired with its implementation.
 * Each kind is registered with Temporal as its own activity type, named by the kind (`train.detector`),
 * so the Temporal UI, metrics and `temporal workflow show` tell steps apart. Implementations import
 * heavy libraries lazily, so importing this registry is cheap.
 */
import { kindDescriptors } from '../../infra/kinds/index';
import { datasetImport } from '../kinds/dataset/import-kind';
import { datasetSplit } from '../kinds/dataset/split-kind';
import { datasetSynth } from '../kinds/dataset/synth-kind';
import { datasetVoc2Coco } from '../kinds/dataset/voc2coco-kind';
import { evalCoco, evalVoc } from '../kinds/eval/kinds';
import { reportFindings } from '../kinds/report/findings';
import { reportHtml } from '../kinds/report/html';
import { reportTable } from '../kinds/report/table';
import { trainPretrain } from '../kinds/train/pretrain';
import { trainDetector } from '../kinds/train/train-detector';
import { utilConcat, utilFail, utilHash, utilNoop, utilWrite } from '../kinds/util/index';
import type { StepKind } from './step-kind';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own params type
export type AnyStepKind = StepKind<any>;

const implementations: readonly AnyStepKind[] = [
  utilWrite,
  utilHash,
  utilConcat,
  utilFail,
  utilNoop,
  reportTable,
  reportHtml,
  reportFindings,
  evalCoco,
  evalVoc,
  datasetSynth,
  datasetSplit,
  datasetImport,
  datasetVoc2Coco,
  trainPretrain,
  trainDetector,
];

const byName = new Map(implementations.map((k) => [k.name, k]));

/** Every kind with its implementation, in the descriptors' order (a descriptor without one is a bug). */
export const stepKinds: readonly AnyStepKind[] = kindDescriptors.map((d) => {
  const kind = byName.get(d.name);
  if (!kind) throw new Error(`step kind ${d.name} has a descriptor but no implementation`);
  return kind;
});

/** The kind called `name`, or undefined. */
export function getStepKind(name: string): AnyStepKind | undefined {
  return byName.get(name);
}

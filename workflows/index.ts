/** The workflows a worker registers. */
export { pipelineRun, progressQuery } from './pipeline-run';
export { stepBatch } from './step-batch';
export { scheduledRun } from './scheduled-run';

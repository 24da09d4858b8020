/** The workflows a worker registers. */
export { pipelineRun, progressQuery } from './pipeline-run';
export { scheduledRun } from './scheduled-run';

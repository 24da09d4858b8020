/** The workflows a worker registers. */
export { pipelineRun, progressQuery } from './pipeline-run';

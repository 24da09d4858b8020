/**
 * Task queue names. Steps say `cpu` or `gpu`; workers poll `<prefix>-cpu` / `<prefix>-gpu`. Pipeline
 * workflows themselves run on the cpu queue's workers.
 */
import type { QueueName } from '../workflows/plan-types';

export const QUEUES: readonly QueueName[] = ['cpu', 'gpu'];

/** The Temporal task queue that serves a step queue. */
export function taskQueueName(prefix: string, queue: QueueName): string {
  return `${prefix}-${queue}`;
}

/** Task queue of the pipeline workflows. */
export function workflowTaskQueue(prefix: string): string {
  return taskQueueName(prefix, 'cpu');
}

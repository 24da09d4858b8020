/**
 * The activities a worker registers: the step runtime (one activity type per step kind, plus the
 * pipeline workflow's bookkeeping), built from their dependencies. Workflows import only the types.
 */
export {
  createActivities,
  type ActivityDeps,
  type BookkeepingActivities,
  type StepActivities,
  type StepActivity,
  type VerdictActivities,
} from './runtime/activities';

/**
 * The activities a worker registers, built from their dependencies (the artifact store), so tests can
 * pass their own store: one activity type per step kind, named by the kind (`train.detector`), all run
 * by the same step runner, plus the pipeline workflow's bookkeeping (loading the DAG, the summary).
 * Workflows type them with {@link StepActivities} and {@link BookkeepingActivities}.
 */
import type { ArtifactStore } from '../../infra/store/index';
import type { LocalCache } from '../../infra/store/local-cache';
import { createDriftCheck } from './drift-check';
import { createVerdictActivities, type DriftCheck } from './drift-verdict';
import { createOrchestrationActivities } from './orchestration';
import { createPlanLoader } from './plan-loader';
import { stepKinds } from './registry';
import { createRunStep, type RunStepInput, type RunStepResult } from './run-step';

export interface ActivityDeps {
  store: ArtifactStore;
  /** The worker's cache of step inputs. @default none: every attempt copies its inputs */
  cache?: LocalCache;
  /** How scheduled runs are compared with their baseline. @default {@link createDriftCheck} */
  checkDrift?: DriftCheck;
}

/** A step activity: the same input and result whatever the kind. */
export type StepActivity = (input: RunStepInput) => Promise<RunStepResult>;

/** Step activities by kind name (the activity type is the kind's name). */
export type StepActivities = Record<string, StepActivity>;

/** The pipeline workflow's bookkeeping activities. */
export type BookkeepingActivities = ReturnType<typeof createOrchestrationActivities>;

/** The scheduled-run workflow's activities (the drift check and verdict of a scheduled run). */
export type VerdictActivities = ReturnType<typeof createVerdictActivities>;

export function createActivities(
  deps: ActivityDeps,
): BookkeepingActivities & VerdictActivities & StepActivities {
  const loadPlan = createPlanLoader(deps.store);
  const runStep = createRunStep({
    store: deps.store,
    loadPlan,
    ...(deps.cache ? { cache: deps.cache } : {}),
  });
  const steps: StepActivities = Object.fromEntries(stepKinds.map((k) => [k.name, runStep]));
  return {
    ...steps,
    ...createOrchestrationActivities({ store: deps.store, loadPlan }),
    ...createVerdictActivities({
      store: deps.store,
      checkDrift: deps.checkDrift ?? createDriftCheck(deps.store),
    }),
  } as BookkeepingActivities & VerdictActivities & StepActivities;
}

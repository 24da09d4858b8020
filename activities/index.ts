/**
 * The activities a worker registers, built from their dependencies (the artifact store), so tests can
 * pass their own store. Workflows type them with `proxyActivities<ReturnType<typeof createActivities>>`.
 */
import type { ArtifactStore } from '../infra/store/index';
import { createDriftCheck } from './drift-check';
import { createVerdictActivities, type DriftCheck } from './drift-verdict';
import { createOrchestrationActivities } from './orchestration';
import { createPlanLoader } from './plan-loader';
import { createRunStep } from './run-step';

export interface ActivityDeps {
  store: ArtifactStore;
  /** How scheduled runs are compared with their baseline. @default {@link createDriftCheck} */
  checkDrift?: DriftCheck;
}

export function createActivities(deps: ActivityDeps) {
  const loadPlan = createPlanLoader(deps.store);
  return {
    runStep: createRunStep({ store: deps.store, loadPlan }),
    ...createOrchestrationActivities({ store: deps.store, loadPlan }),
    ...createVerdictActivities({
      store: deps.store,
      checkDrift: deps.checkDrift ?? createDriftCheck(deps.store),
    }),
  };
}

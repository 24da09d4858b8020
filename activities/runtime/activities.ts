/**
 * The activities a worker registers, built from their dependencies (the artifact store), so tests can
 * pass their own store. Workflows type them with `proxyActivities<ReturnType<typeof createActivities>>`.
 */
import type { ArtifactStore } from '../../infra/store/index';
import { createOrchestrationActivities } from './orchestration';
import { createPlanLoader } from './plan-loader';
import { createRunStep } from './run-step';

export interface ActivityDeps {
  store: ArtifactStore;
}

export function createActivities(deps: ActivityDeps) {
  const loadPlan = createPlanLoader(deps.store);
  return {
    runStep: createRunStep({ store: deps.store, loadPlan }),
    ...createOrchestrationActivities({ store: deps.store, loadPlan }),
  };
}

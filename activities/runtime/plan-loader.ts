/**
 * Plans live in the artifact store (content-addressed JSON); workers load each once and keep a few in
 * memory, indexed by step key.
 */
import type { ArtifactStore } from '../../infra/store/index';
import { ErrorType, permanent } from '../../infra/errors';
import type { ArtifactRef, Plan, PlannedStep } from '../../workflows/plan-types';

export interface LoadedPlan {
  plan: Plan;
  byKey: Map<string, PlannedStep>;
  indexOf: Map<string, number>;
}

export function createPlanLoader(store: ArtifactStore, keep = 4) {
  const cache = new Map<string, Promise<LoadedPlan>>();
  return async function loadPlan(ref: ArtifactRef): Promise<LoadedPlan> {
    let entry = cache.get(ref.digest);
    if (!entry) {
      entry = store.getJson<Plan>(ref).then((plan) => {
        if (plan.version !== 1 || !Array.isArray(plan.steps)) {
          throw permanent(
            ErrorType.InvalidPipeline,
            `${ref.uri} is not a compiled plan (version ${String(plan.version)})`,
          );
        }
        return {
          plan,
          byKey: new Map(plan.steps.map((s) => [s.key, s])),
          indexOf: new Map(plan.steps.map((s, i) => [s.key, i])),
        };
      });
      entry.catch(() => cache.delete(ref.digest));
      cache.set(ref.digest, entry);
      if (cache.size > keep) cache.delete(cache.keys().next().value!);
    }
    return entry;
  };
}

/**
 * Which steps of a plan would be served from the step cache, without running anything: walk the plan
 * in order; a step is `cached` when every upstream output it reads is known (its upstream steps are
 * cached too), and a cache entry exists for its cache key whose output artifacts and provenance all
 * verify intact: the same test the step runner makes before it serves a hit.
 */
import { bindReferences } from '../activities/runtime/bind';
import { getStepKind } from '../activities/runtime/registry';
import { recordKeys, type CacheEntry } from '../activities/runtime/run-records';
import { cacheKeyOf, kindIdentity } from '../activities/runtime/cache-key';
import { type JsonValue, type Plan, type StepOutputs } from '../workflows/plan-types';
import type { ArtifactStore } from './store/index';

export type CacheState = 'cached' | 'run';

class Unknown extends Error {}

export async function cacheStatus(plan: Plan, store: ArtifactStore): Promise<Map<string, CacheState>> {
  const state = new Map<string, CacheState>();
  const outputs = new Map<string, StepOutputs>();
  for (const step of plan.steps) {
    const kind = getStepKind(step.uses);
    if (!kind || !step.cache || kind.cacheable === false) {
      state.set(step.key, 'run');
      continue;
    }
    let params: JsonValue;
    try {
      params = await bindReferences(step.with, async (from) => {
        const up = outputs.get(from.step);
        if (!up || !(from.output in up)) throw new Unknown();
        return up[from.output]!;
      });
    } catch (err) {
      if (!(err instanceof Unknown)) throw err;
      state.set(step.key, 'run');
      continue;
    }
    const entry = await store.getRecord<CacheEntry>(
      recordKeys.cache(cacheKeyOf(await kindIdentity(kind, params), params)),
    );
    const present =
      entry !== undefined && (await store.verifyOutputs([...Object.values(entry.outputs), entry.provenance]));
    state.set(step.key, present ? 'cached' : 'run');
    if (present) outputs.set(step.key, entry.outputs);
  }
  return state;
}

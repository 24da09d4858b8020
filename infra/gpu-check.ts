/**
 * The check a gpu-queue worker makes before it takes work: that the GPU backend
 * (`@tensorflow/tfjs-node-gpu`) loads. Without it the worker would train on CPU, many times slower,
 * while the run looks healthy; so it refuses to start unless told that CPU is acceptable.
 */
import { initTrainingBackend } from '../activities/kinds/train/backend';
import { AblateError, ErrorType } from './errors';

export interface GpuCheck {
  /** The backend this worker's training steps will use. */
  backend: string;
  device: 'gpu' | 'cpu';
  /** Why the GPU backend did not load, when it did not. */
  reason?: string;
}

/**
 * Start the training backend the way a GPU worker's steps will (tfjs-node-gpu first; the runtime is
 * per process, so steps get the same one). Throws when it is not the GPU one and `allowCpuFallback`
 * is false.
 */
export async function checkGpuBackend(allowCpuFallback: boolean): Promise<GpuCheck> {
  const runtime = await initTrainingBackend({ gpu: true });
  if (runtime.device === 'gpu') return { backend: runtime.backend, device: 'gpu' };
  const reason =
    runtime.notes.find((n) => n.startsWith('tensorflow-gpu:'))?.replace(/^tensorflow-gpu: /, '') ??
    'no GPU backend was tried (ABLATE_TFJS_BACKEND forces another one)';
  if (!allowCpuFallback)
    throw new AblateError(
      ErrorType.InvalidConfig,
      `this gpu worker cannot load the GPU backend @tensorflow/tfjs-node-gpu (${reason}): install CUDA 11.2 and cuDNN 8.1 for tfjs-node-gpu 4.22 (README "Backends"), or pass --allow-cpu-fallback to run gpu steps on CPU`,
    );
  return { backend: runtime.backend, device: 'cpu', reason };
}

/**
 * Picks the executor the server runs on, and says why (the server logs the reason). Today there is
 * one: the CPU executor over onnxruntime-node, for manifests whose graphs are ONNX files. An NVIDIA
 * driver is detected from /proc/driver/nvidia/version; when one is present the compiled-module GPU
 * executor will be chosen here — it does not exist yet, so the reason says so.
 */
import { existsSync } from 'node:fs';
import { cpuExecutorFactory } from './ort.ts';
import type { ExecutorFactory, ExecutorKind } from './types.ts';

export interface ExecutorChoice { kind: ExecutorKind; factory: ExecutorFactory; reason: string }

export function selectExecutor(gpuProbe = '/proc/driver/nvidia/version'): ExecutorChoice {
  const gpu = existsSync(gpuProbe);
  return {
    kind: 'cpu',
    factory: cpuExecutorFactory,
    reason: gpu
      ? 'an NVIDIA GPU is present, but the compiled-module GPU executor is not implemented yet: using the CPU executor (onnxruntime-node)'
      : 'no GPU found: using the CPU executor (onnxruntime-node)',
  };
}

/**
 * Worker thread of the streaming weight quantizer (weights.ts): receives RangeJobs, runs each
 * with runRangeJob (positioned reads of its rows from the source, positioned writes of its part
 * of each output section to the shared descriptor) and replies with the partial statistics, or
 * the error (a CompileError's site kept so the main thread rethrows it as such).
 */
import { parentPort } from 'node:worker_threads';
import { CompileError } from '../errors.ts';
import { type RangeJob, runRangeJob, type WorkerReply } from './weights.ts';

parentPort!.on('message', (job: RangeJob) => {
  let reply: WorkerReply;
  try {
    reply = { ok: true, result: runRangeJob(job) };
  } catch (e) {
    reply = e instanceof CompileError
      ? { ok: false, message: e.message, site: e.site }
      : { ok: false, message: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});

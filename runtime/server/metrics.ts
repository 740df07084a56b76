/**
 * Prometheus metrics for GET /metrics, in the text exposition format (version 0.0.4), with no
 * client library: counters and histograms keep their values here, gauges are read when scraped.
 *
 *   dc_requests_total{method,route,code}      every HTTP response, by route template and status
 *   dc_queue_wait_seconds                     time from accepted to started (histogram)
 *   dc_inference_seconds                      time a generation ran, all n images (histogram)
 *   dc_step_device_seconds                    each denoising step's device time (histogram; only where the
 *                                             loop runs on the device: GPU)
 *   dc_images_total, dc_denoising_steps_total work done
 *   dc_cancelled_total{stage}                 queued (never ran) or running (stopped at a step),
 *                                             by client disconnect; dc_deadline_exceeded_total
 *   dc_queue_depth, dc_generations_running, dc_requests_in_flight, dc_ready   gauges
 *   dc_gpu_memory_bytes                       only when the executor knows it (GPU)
 *   dc_gpu_energy_joules_total                the board's energy counter (NVML), only on a GPU that has it:
 *                                             joules an image = its rate over dc_images_total's
 *   process_resident_memory_bytes, dc_info{model,family,executor}
 *
 * Label values are escaped per the format (backslash, quote, newline).
 */

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string>) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export class Counter {
  private readonly values = new Map<string, { labels: Record<string, string>; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(l: Record<string, string> = {}, by = 1): void {
    const key = labels(l);
    const e = this.values.get(key) ?? { labels: l, value: 0 };
    e.value += by;
    this.values.set(key, e);
  }
  get(l: Record<string, string> = {}): number { return this.values.get(labels(l))?.value ?? 0; }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const e of this.values.values()) out.push(`${this.name}${labels(e.labels)} ${e.value}`);
    if (!this.values.size) out.push(`${this.name} 0`);
    return out;
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return out;
  }
}

/** A value read when scraped: a gauge, or a counter kept elsewhere (a monotonic reading, as the board's energy). */
export interface Gauge { name: string; help: string; read: () => number | undefined; labels?: Record<string, string>; type?: 'gauge' | 'counter' }

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Finer around the steps' times at the sizes served (H200s' 1024x1024 steps, medians in session 37's calls H1 and H9: Flux.2 0.235-0.239 s, Qwen-Image with true CFG 0.134-0.135 s). */
const STEP_SECONDS = [0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25, 0.3, 0.4, 0.5, 1, 2.5];

export class ServerMetrics {
  readonly requests = new Counter('dc_requests_total', 'HTTP responses by method, route and status code.');
  readonly queueWait = new Histogram('dc_queue_wait_seconds', 'Time a generation waited in the queue before it started.', SECONDS);
  readonly inference = new Histogram('dc_inference_seconds', 'Time a generation ran (all n images).', SECONDS);
  readonly stepDevice = new Histogram('dc_step_device_seconds', 'Device time of each denoising step (GPU: CUDA events around the step).', STEP_SECONDS);
  readonly images = new Counter('dc_images_total', 'Images generated.');
  readonly steps = new Counter('dc_denoising_steps_total', 'Denoising steps run.');
  readonly cancelled = new Counter('dc_cancelled_total', 'Generations cancelled because the client disconnected, by stage.');
  readonly deadline = new Counter('dc_deadline_exceeded_total', 'Generations stopped at the per-request deadline (504).');
  private readonly gauges: Gauge[] = [];

  gauge(g: Gauge): void { this.gauges.push(g); }

  render(): string {
    const lines = [
      ...this.requests.render(), ...this.queueWait.render(), ...this.inference.render(), ...this.stepDevice.render(), ...this.images.render(),
      ...this.steps.render(), ...this.cancelled.render(), ...this.deadline.render(),
    ];
    for (const g of this.gauges) {
      const v = g.read();
      if (v === undefined) continue;
      lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} ${g.type ?? 'gauge'}`, `${g.name}${labels(g.labels ?? {})} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}

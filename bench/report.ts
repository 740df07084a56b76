/**
 * Bench reports: one result object -> JSON, a markdown table and a bar chart (SVG, and PNG through
 * sharp where it is installed; the GPU host's bundle has no sharp, so the PNG is then written by
 * `npx bench --report FILE.json` on a machine that has it).
 */
import { writeFileSync } from 'node:fs';

export interface BenchRow {
  model: string;
  /** 'compiled' or a baseline's name (diffusers eager, torch.compile, onnxruntime-node). */
  system: string;
  msPerStep: number;
  tflops?: number;
  memoryGiB?: number;
  relL2?: number;
  note?: string;
}

/** What every bench report (per step, end to end) states about its run. */
export interface ReportHeader {
  date: string;
  device: string;
  command: string;
  steps: number;
  seed: number;
  weights: string;
  notes: string[];
}

export interface BenchResult extends ReportHeader {
  kind: 'gpu' | 'cpu';
  rows: BenchRow[];
  stages?: Record<string, Record<string, number>>;
  /** The card's measured FP8 GEMM ceiling (TFLOP/s), for the share column (GPU reports). */
  ceilingTflops?: number;
}

export function markdown(r: BenchResult): string {
  const lines = [
    `# npx bench (${r.kind}), ${r.date}`,
    '',
    `Device: ${r.device}. Command: \`${r.command}\`. Weights: ${r.weights}. Seed ${r.seed}; ${r.steps} denoising steps per image.`,
    '',
    `| model | system | ms / step | ms / ${r.steps} steps | TFLOP/s | share of FP8 ceiling | GPU memory GiB | error vs PyTorch | note |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.rows.map((x) => {
      const share = x.tflops !== undefined && r.ceilingTflops ? `${((100 * x.tflops) / r.ceilingTflops).toFixed(0)}%` : '';
      return `| ${x.model} | ${x.system} | ${x.msPerStep.toFixed(1)} | ${(x.msPerStep * r.steps).toFixed(0)} | ${x.tflops?.toFixed(0) ?? ''} | ${share} | ${x.memoryGiB?.toFixed(1) ?? ''} | ${x.relL2 !== undefined ? x.relL2.toExponential(2) : ''} | ${x.note ?? ''} |`;
    }),
  ];
  for (const [model, stages] of Object.entries(r.stages ?? {})) {
    const total = Object.values(stages).reduce((a, b) => a + b, 0);
    lines.push('', `Where a ${model} step goes (launch by launch, ${total.toFixed(1)} ms):`, '', '| stage | ms | share |', '| --- | ---: | ---: |');
    for (const [k, ms] of Object.entries(stages).sort((a, b) => b[1] - a[1])) lines.push(`| ${k} | ${ms.toFixed(2)} | ${((100 * ms) / total).toFixed(1)}% |`);
  }
  if (r.ceilingTflops) lines.push('', `Share of FP8 ceiling: TFLOP/s over ${r.ceilingTflops}, the fastest FP8 GEMM (cuBLASLt, Flux.2 shapes) measured on an H100 80GB HBM3 (bench/RESULTS.md, the FP8 GEMM path).`);
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

/** Horizontal bars of ms per step, one group per model; the label column as wide as the longest label (7.5 px a character at 13 px). */
export function chartSvg(r: BenchResult): string {
  const rowH = 26, top = 40, barArea = 560;
  const labels = r.rows.map((x) => `${x.model} · ${x.system}`);
  const left = Math.max(160, Math.ceil(Math.max(0, ...labels.map((l) => l.length)) * 7.5) + 20), width = left + barArea + 80;
  const max = Math.max(...r.rows.map((x) => x.msPerStep), 1);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = r.rows.map((x, i) => {
    const y = top + i * rowH, w = (barArea * x.msPerStep) / max;
    const fill = x.system.startsWith('compiled') ? '#2a7ae2' : '#9aa5b1';
    return `<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="13">${esc(labels[i])}</text>`
      + `<rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${fill}"/>`
      + `<text x="${(left + w + 6).toFixed(1)}" y="${y + 17}" font-size="13">${x.msPerStep.toFixed(1)} ms</text>`;
  });
  const height = top + r.rows.length * rowH + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`
    + `<rect width="100%" height="100%" fill="white"/><text x="12" y="24" font-size="15">${esc(`ms per denoising step, ${r.device} (${r.weights})`)}</text>${bars.join('')}</svg>`;
}

/** Writes BASE.json, BASE.md, BASE.svg and BASE.png (when sharp loads); returns the files written. */
const NO_PNG = 'PNG chart not written here';

/**
 * Writes BASE.json, BASE.md, BASE.svg and BASE.png (when sharp loads) of a report, the JSON and
 * markdown last so that they carry the note when no PNG could be made; returns the files written.
 */
export async function writeReportFiles<R extends ReportHeader>(r: R, base: string, toMarkdown: (r: R) => string, toSvg: (r: R) => string): Promise<string[]> {
  r.notes = r.notes.filter((n) => !n.startsWith(NO_PNG));
  const svg = toSvg(r);
  writeFileSync(`${base}.svg`, svg);
  const files = [`${base}.json`, `${base}.md`, `${base}.svg`];
  try {
    const sharp = (await import('sharp')).default;
    await sharp(Buffer.from(svg)).png().toFile(`${base}.png`);
    files.push(`${base}.png`);
  } catch {
    r.notes.push(`${NO_PNG} (sharp is not available): run \`npx bench --report ${base}.json\` where it is.`);
  }
  writeFileSync(`${base}.json`, `${JSON.stringify(r, null, 1)}\n`);
  writeFileSync(`${base}.md`, toMarkdown(r));
  return files;
}

export const writeReport = (r: BenchResult, base: string): Promise<string[]> => writeReportFiles(r, base, markdown, chartSvg);

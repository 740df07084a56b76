/**
 * `npx bench --e2e` reports: the result object -> JSON, markdown (one table per family: each stage,
 * compiled vs diffusers, and each module's device time) and a stacked bar chart (SVG; PNG through
 * sharp where it loads, as bench/report.ts).
 */
import { E2E_PIPELINES, type E2eResult, STAGES, type Stage } from './e2e.ts';
import { writeReportFiles } from './report.ts';

const STAGE_NAMES: Record<Stage, string> = { textEncode: 'text encode', denoise: 'denoise', vaeDecode: 'VAE decode', imageEncode: 'image encode (PNG)' };
const ROLE_NAMES = { textEncoder: 'text encoder', transformer: 'transformer', transformerCfg: 'transformer, batch 2 (CFG pairs)', vaeDecoder: 'VAE decoder' } as const;

const ms = (x: number | undefined) => (x === undefined ? '' : x.toFixed(1));
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(b / a).toFixed(2)}x` : '');

export function e2eMarkdown(r: E2eResult): string {
  const lines = [
    `# npx bench --e2e, ${r.date}`,
    '',
    `Device: ${r.device}. Command: \`${r.command}\`. Weights: ${r.weights}. Prompt: ${r.tokens}. Seed ${r.seed}; ${r.steps} denoising steps; one request, batch 1.`,
  ];
  const families = [...new Set(r.rows.map((x) => x.family))];
  for (const f of families) {
    const rows = r.rows.filter((x) => x.family === f);
    const compiled = rows.find((x) => x.system.startsWith('compiled'));
    const base = rows.find((x) => !x.system.startsWith('compiled'));
    const target = r.targets[f];
    lines.push('', `## ${E2E_PIPELINES[f].title}`, '');
    if (compiled && target !== undefined) {
      const verdict = compiled.stages.total <= target ? 'met' : 'not met';
      lines.push(`End to end: compiled ${compiled.stages.total.toFixed(0)} ms against the target of ${target} ms: ${verdict}.`, '');
    }
    lines.push(`| stage | ${rows.map((x) => x.system).join(' | ')} | compiled vs diffusers |`, `| --- |${rows.map(() => ' ---: |').join('')} ---: |`);
    for (const s of STAGES) lines.push(`| ${STAGE_NAMES[s]} | ${rows.map((x) => ms(x.stages[s])).join(' | ')} | ${ratio(compiled?.stages[s], base?.stages[s])} |`);
    lines.push(`| **total** | ${rows.map((x) => `**${ms(x.stages.total)}**`).join(' | ')} | ${ratio(compiled?.stages.total, base?.stages.total)} |`);
    lines.push(`| GPU memory GiB | ${rows.map((x) => (x.memoryGiB === undefined ? '' : x.memoryGiB.toFixed(1))).join(' | ')} | |`);
    if (rows.some((x) => x.joulesPerImage !== undefined)) lines.push(`| GPU board energy, J an image (NVML) | ${rows.map((x) => (x.joulesPerImage === undefined ? 'not measured' : x.joulesPerImage.toFixed(0))).join(' | ')} | |`);
    for (const x of rows) if (x.note) lines.push('', `- ${x.system}: ${x.note}`);
    const mods = r.modules[f];
    if (mods?.length) {
      lines.push('', 'Device time of each compiled module (CUDA-graph replay alone, median), per request:', '', '| module | ms per call | calls | ms per request | GPU memory GiB |', '| --- | ---: | ---: | ---: | ---: |');
      // A module this request did not run (another text length, or the batch-1 transformer beside its CFG pair) is
      // not timed: its row keeps the memory it holds.
      for (const m of mods) lines.push(`| ${ROLE_NAMES[m.role]}${m.textLength ? `, ${m.textLength}-token text` : ''} | ${m.calls ? m.msPerCall.toFixed(2) : 'not run'} | ${m.calls} | ${m.calls ? m.ms.toFixed(1) : '—'} | ${m.memoryGiB.toFixed(2)} |`);
      const device = mods.reduce((a, m) => a + m.ms, 0);
      lines.push(`| all | | | ${device.toFixed(1)} | ${mods.reduce((a, m) => a + m.memoryGiB, 0).toFixed(2)} |`);
      const paired = mods.some((m) => m.role === 'transformerCfg');
      if (compiled) lines.push('', `Wall minus device time: ${(compiled.stages.total - device).toFixed(0)} ms of the ${compiled.stages.total.toFixed(0)} ms request (host work and copies, plus any difference between a module's time inside the request and alone${paired ? '' : '; runs made two at a time on two streams, as Qwen-Image\'s CFG passes without a batch-2 module, overlap, so their calls x time alone overstates them'}).`);
      const steps = compiled?.stepsDeviceMs;
      const alone = mods.filter((m) => m.role === 'transformer' || m.role === 'transformerCfg').reduce((a, m) => a + m.ms, 0);
      if (compiled && steps !== undefined) lines.push('', `Inside the requests the denoising steps ran ${steps.toFixed(1)} ms on the device (CUDA events; the transformer alone x its calls: ${alone.toFixed(1)}): the denoise stage's ${compiled.stages.denoise.toFixed(1)} ms hold ${(compiled.stages.denoise - steps).toFixed(1)} ms of host work and copies outside the steps.`);
    }
  }
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

/** One stacked bar per family and system: the four stages. */
export function e2eChartSvg(r: E2eResult): string {
  const rowH = 30, left = 430, width = 1100, top = 44;
  const colors: Record<Stage, string> = { textEncode: '#7b61ff', denoise: '#2a7ae2', vaeDecode: '#1fa37a', imageEncode: '#e2a22a' };
  const max = Math.max(...r.rows.map((x) => x.stages.total), 1);
  const scale = (width - left - 90) / max;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = r.rows.map((x, i) => {
    const y = top + i * rowH;
    let at = left;
    const segs = STAGES.map((s) => {
      const w = x.stages[s] * scale;
      const seg = `<rect x="${at.toFixed(1)}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${colors[s]}"/>`;
      at += w;
      return seg;
    });
    const who = x.system.startsWith('compiled') ? 'compiled' : x.system.replace(/ \(.*$/, '');
    return `<text x="${left - 8}" y="${y + 19}" text-anchor="end" font-size="12">${esc(`${E2E_PIPELINES[x.family].title} · ${who}`)}</text>${segs.join('')}`
      + `<text x="${(at + 6).toFixed(1)}" y="${y + 19}" font-size="12">${x.stages.total.toFixed(0)} ms</text>`;
  });
  const legend = STAGES.map((s, i) => `<rect x="${left + i * 150}" y="${top + r.rows.length * rowH + 8}" width="12" height="12" fill="${colors[s]}"/><text x="${left + i * 150 + 16}" y="${top + r.rows.length * rowH + 19}" font-size="12">${STAGE_NAMES[s]}</text>`);
  const height = top + r.rows.length * rowH + 36;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>`
    + `<text x="12" y="26" font-size="15">${esc(`one 1024x1024 request, ${r.steps} steps, ms per stage — ${r.device} (${r.weights})`)}</text>${bars.join('')}${legend.join('')}</svg>`;
}

/** Writes BASE.json, BASE.md, BASE.svg and BASE.png (when sharp loads); returns the files written. */
export const writeE2eReport = (r: E2eResult, base: string): Promise<string[]> => writeReportFiles(r, base, e2eMarkdown, e2eChartSvg);

/**
 * A readable text dump of a graph, one line per node (`y: float32[1,4] = Add(a, b) {attrs}`),
 * used by `--dump-after PASS` and in test failure messages.
 */
import { Tensor } from './tensor.ts';
import { type Graph, formatType } from './graph.ts';

export function printGraph(graph: Graph): string {
  const lines: string[] = [`graph ${graph.name} (opset ${graph.opset})`];
  const t = (name: string) => (graph.types.get(name) ? formatType(graph.types.get(name)!) : '?');
  for (const name of graph.inputs) lines.push(`  input  ${name}: ${t(name)}`);
  for (const [name, c] of graph.constants) {
    const small = c.source.kind === 'inline' && c.source.tensor.size <= 8 ? ` = [${c.source.tensor.toNumbers()}]` : c.source.kind === 'external' ? ' (external)' : '';
    lines.push(`  const  ${name}: ${c.dtype}[${c.shape}]${small}`);
  }
  for (const n of graph.nodes) {
    const attrs = Object.entries(n.attrs).map(([k, v]) => `${k}=${v instanceof Tensor ? `tensor<${v.dtype}[${v.shape}]>` : JSON.stringify(v)}`).join(' ');
    const outs = n.outputs.map((o) => `${o}: ${t(o)}`).join(', ');
    lines.push(`  ${outs} = ${n.domain ? n.domain + '.' : ''}${n.op}(${n.inputs.join(', ')})${attrs ? ` {${attrs}}` : ''}`);
    if (n.body) {
      lines.push(`    body(${n.body.inputs.join(', ')}) -> ${n.body.outputs.join(', ')}`);
      for (const b of n.body.nodes) lines.push(`      ${b.outputs.join(', ')} = ${b.domain ? b.domain + '.' : ''}${b.op}(${b.inputs.join(', ')})`);
    }
  }
  lines.push(`  return ${graph.outputs.join(', ')}`);
  return lines.join('\n') + '\n';
}

/**
 * Conformance of Resize (compiler/ops/resize.ts) against onnxruntime-node: nearest with each
 * nearest_mode and coordinate transformation, linear (bi/tri-linear) with half_pixel,
 * align_corners, pytorch_half_pixel and asymmetric, from scales (incl. non-integer, where the
 * output size floors) and from sizes (up and down); plus the unsupported-mode error.
 */
import { describe, expect, it } from 'vitest';
import { CompileError } from '../../compiler/errors.ts';
import { buildModel, checkNode, f32, i64, importAndInfer, init, Rng, type In } from '../helpers/onnx-model.ts';

const r = new Rng(555);
const scales = (s: number[]) => init(f32([s.length], s));
const sizes = (s: number[]) => init(i64([s.length], s));
const resize = (x: In, how: { scales?: number[]; sizes?: number[] }, attrs: Record<string, string>) =>
  checkNode('Resize', [x, null, how.scales ? scales(how.scales) : null, how.sizes ? sizes(how.sizes) : null], attrs);

describe('Resize nearest', () => {
  it('asymmetric/floor, 2x upsample (the VAE upsampler)', () => resize(r.randn([1, 2, 3, 4]), { scales: [1, 1, 2, 2] },
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }));
  it('asymmetric/floor, non-integer scale 1.5 (output size floors)', () => resize(r.randn([1, 1, 5, 3]), { scales: [1, 1, 1.5, 1.5] },
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }));
  it('half_pixel/round_prefer_floor, sizes up', () => resize(r.randn([1, 2, 3, 5]), { sizes: [1, 2, 7, 8] },
    { mode: 'nearest', coordinate_transformation_mode: 'half_pixel', nearest_mode: 'round_prefer_floor' }));
  it('half_pixel/round_prefer_floor, scale 0.5 down (ties)', () => resize(r.randn([1, 1, 6, 4]), { scales: [1, 1, 0.5, 0.5] },
    { mode: 'nearest', coordinate_transformation_mode: 'half_pixel', nearest_mode: 'round_prefer_floor' }));
  it('default attributes (half_pixel, round_prefer_floor)', () => resize(r.randn([1, 1, 4, 4]), { scales: [1, 1, 0.5, 1.5] }, {}));
  for (const nm of ['round_prefer_ceil', 'ceil', 'floor']) {
    it(`half_pixel/${nm}, scale 0.5 and 3`, () => resize(r.randn([1, 1, 6, 2]), { scales: [1, 1, 0.5, 3] },
      { mode: 'nearest', coordinate_transformation_mode: 'half_pixel', nearest_mode: nm }));
  }
  it('align_corners, sizes', () => resize(r.randn([1, 1, 4, 3]), { sizes: [1, 1, 7, 2] },
    { mode: 'nearest', coordinate_transformation_mode: 'align_corners' }));
  it('int32 data (ORT has no int64 Resize)', () => resize(r.ints([1, 1, 2, 3], -9, 9, 'int32'), { scales: [1, 1, 2, 2] },
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }));
});

describe('Resize linear', () => {
  for (const ctm of ['half_pixel', 'align_corners', 'pytorch_half_pixel', 'asymmetric']) {
    it(`${ctm}, 2x upsample`, () => resize(r.randn([1, 2, 3, 4]), { scales: [1, 1, 2, 2] }, { mode: 'linear', coordinate_transformation_mode: ctm }));
    it(`${ctm}, sizes down`, () => resize(r.randn([2, 1, 7, 6]), { sizes: [2, 1, 3, 4] }, { mode: 'linear', coordinate_transformation_mode: ctm }));
  }
  it('pytorch_half_pixel to a length-1 axis', () => resize(r.randn([1, 1, 5, 4]), { sizes: [1, 1, 1, 6] },
    { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }));
  it('half_pixel non-integer scale 1.7', () => resize(r.randn([1, 1, 4, 5]), { scales: [1, 1, 1.7, 1.7] }, { mode: 'linear' }));
  it('trilinear on a 5-D video tensor', () => resize(r.randn([1, 2, 3, 4, 4]), { scales: [1, 1, 2, 2, 2] }, { mode: 'linear' }));
  it('2-D input, both axes resized', () => resize(r.randn([4, 5]), { sizes: [7, 3] }, { mode: 'linear', coordinate_transformation_mode: 'align_corners' }));
});

describe('Resize errors', () => {
  it('cubic mode is a CompileError', () => {
    const bytes = buildModel({
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 1, 2, 2] }],
      nodes: [{ op: 'Resize', inputs: ['x', '', 's'], outputs: ['y'], attrs: { mode: 'cubic' }, name: 'up' }],
      initializers: { s: f32([4], [1, 1, 2, 2]) },
      outputs: ['y'],
    });
    expect(() => importAndInfer(bytes)).toThrow(CompileError);
    expect(() => importAndInfer(bytes)).toThrow(/Resize node 'up'.*cubic/);
  });
});

"""Baseline for the attention kernels (issue 6): PyTorch SDPA, flash and cuDNN backends, bf16, on
the shapes the compiled attention is timed at (test/gpu/attention.ts), in the same run on the same
card. FLOPs = 4*B*H*Sq*Skv*D. Median of 5 timings of 20 back-to-back calls each (CUDA events), on
random normal inputs. Usage: python3 bench/gpu/attention_sdpa.py OUT_DIR  (writes OUT_DIR/sdpa.json)."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from timing import median_ms

SHAPES = [  # name, batch, heads, kv heads, query tokens, key tokens, head dim
    ('flux2 4608 tokens x 48 heads x 128', 1, 48, 48, 4608, 4608, 128),
    ('qwen_image 4352 tokens x 24 heads x 128', 1, 24, 24, 4352, 4352, 128),
]
BACKENDS = [('flash', SDPBackend.FLASH_ATTENTION), ('cudnn', SDPBackend.CUDNN_ATTENTION)]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else '.'
    torch.manual_seed(0)
    results = []
    print(f'device {torch.cuda.get_device_name()} torch {torch.__version__} cudnn {torch.backends.cudnn.version()}')
    for name, b, h, hkv, sq, skv, d in SHAPES:
        q = torch.randn(b, h, sq, d, device='cuda', dtype=torch.bfloat16)
        k = torch.randn(b, hkv, skv, d, device='cuda', dtype=torch.bfloat16)
        v = torch.randn(b, hkv, skv, d, device='cuda', dtype=torch.bfloat16)
        flops = 4 * b * h * sq * skv * d
        for backend, kind in BACKENDS:
            try:
                with sdpa_kernel([kind]):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v))
                results.append({'shape': name, 'backend': backend, 'ms': ms, 'tflops': flops / ms / 1e9})
                print(f'| {name} | sdpa {backend} | {ms * 1000:.1f} us | {flops / ms / 1e9:.0f} TFLOP/s |')
            except Exception as e:  # a backend missing on this build is reported, not fatal
                print(f'| {name} | sdpa {backend} | unavailable: {str(e).splitlines()[0][:120]} |')
    with open(f'{out}/sdpa.json', 'w') as f:
        json.dump({'device': torch.cuda.get_device_name(), 'torch': torch.__version__, 'results': results}, f, indent=1)


if __name__ == '__main__':
    main()

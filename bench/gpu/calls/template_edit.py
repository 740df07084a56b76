"""In-place edits of a template for the experiment scripts (session39-trace.py, session41-utrace.py, session41-prefetch.py,
session42-ttrace.py, session42-uprologue.py): each text replaced must occur exactly once; `before_kernel` puts
declarations ahead of the attention kernel's entry, `declare_trace` the harness's trace array and a mark macro.
Restore the template with `git checkout` after preparing the cases."""
KERNEL = 'extern "C" __global__ void __launch_bounds__(384, 1) {{ name }}('
TRACE = '__device__ unsigned long long {{ name }}_utrace[{{ fullUnits + tailUnits * tailPieces }} * 32];  // %s experiment\n'


class TemplateEdit:
    def __init__(self, path='templates/attention.cu.njk'):
        self.path = path
        self.text = open(path).read()

    def rep(self, old, new):
        assert self.text.count(old) == 1, old
        self.text = self.text.replace(old, new)

    def before_kernel(self, declarations):
        self.rep(KERNEL, declarations + KERNEL)

    def declare_trace(self, tag, macro):
        """The trace array the harness writes to OUT/utrace-CASE.bin (test/gpu/attention_harness.cu: NAME_utrace, 32 u64 a
        CTA) and the script's mark macro, ahead of the kernel."""
        self.before_kernel(TRACE % tag + macro)

    def write(self):
        open(self.path, 'w').write(self.text)

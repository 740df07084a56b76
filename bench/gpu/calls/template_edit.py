"""In-place edits of a template for the experiment scripts (session39-trace.py, session41-utrace.py, session41-prefetch.py):
each text replaced must occur exactly once; `before_kernel` puts declarations (a trace array, its macro) ahead of the
attention kernel's entry. Restore the template with `git checkout` after preparing the cases."""
KERNEL = 'extern "C" __global__ void __launch_bounds__(384, 1) {{ name }}('


class TemplateEdit:
    def __init__(self, path='templates/attention.cu.njk'):
        self.path = path
        self.text = open(path).read()

    def rep(self, old, new):
        assert self.text.count(old) == 1, old
        self.text = self.text.replace(old, new)

    def before_kernel(self, declarations):
        self.rep(KERNEL, declarations + KERNEL)

    def write(self):
        open(self.path, 'w').write(self.text)

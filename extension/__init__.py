"""The defer-runner extension (in the layer under the name ``_defer_runner``)."""

from typing import List

#: The interpreter's site-packages whose ``.pth`` files did not run: the launcher starts
#: Python with -S, and layer/bootstrap.py lists them here. They run before the first task
#: import (main.run_site_pth_files), as site would have run them in the function's process.
SITE_PACKAGES: List[str] = []

"""``python -m ctinpaint``: the command line, also as the module ``torchrun`` starts.

Example: ``torchrun --nproc_per_node 4 -m ctinpaint train scan.zarr --out model/``.
"""

import sys

from .cli import main

sys.exit(main())

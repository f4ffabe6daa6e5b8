"""PyTorch networks, their training and scoring.

Importing the package asks PyTorch's CPU allocator to put blocks of 2 MB and more on transparent huge pages
(``THP_MEM_ALLOC_ENABLE``; Linux with THP in "madvise" or "always" mode, a no-op elsewhere). A CPU training step
allocates its activations afresh, up to gigabytes a step, and with 4 KB pages the kernel's page faults cost
15-50 % of the step (bench/bench_allocator.py). PyTorch reads the setting at the process's first tensor
allocation, so it is set here, before this package allocates anything; a value the user set (0) is kept.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

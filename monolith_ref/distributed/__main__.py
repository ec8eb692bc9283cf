"""``python -m monolith_ref.distributed --rank R --world-size W ...``: run one parameter server.

When the server is done the process ends with ``os._exit``: an interpreter that loaded
torch takes seconds to tear down, and nothing is left to save (the tables were in memory,
the snapshots are already fsynced). See: book/ch12_distributed.md
"""

from __future__ import annotations

if __name__ == "__main__":
    import os
    import sys

    from monolith_ref.distributed.ps import main_ps

    code = main_ps()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

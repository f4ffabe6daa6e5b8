import atexit
import logging
import os
import sys

from pipeline.cli import main

code = main()
# Tearing down the interpreter after a run (Dagster's module graph, the run's objects) takes 1-3 s that the
# command has no use for: every warehouse and event-log connection is closed by now. Run the exit handlers,
# flush the logs and the terminal, and leave without it.
atexit._run_exitfuncs()
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(int(code or 0))

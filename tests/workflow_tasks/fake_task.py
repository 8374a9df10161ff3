"""A stand-in task for end-to-end workflow tests.

Usage: fake_task.py [--sleep S] [--exit CODE] [--records N]
Sleeps, then reports N records through ORCHESTRATOR_RESULT_FILE and exits
with CODE (0 by default), as a user's collector script would.
"""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--exit", type=int, default=0)
parser.add_argument("--records", type=int, default=7)
args = parser.parse_args()
time.sleep(args.sleep)
result = {"records_processed": args.records}
if args.exit:
    result = {"error": f"fake failure of {os.environ['ORCHESTRATOR_TASK']} (exit {args.exit})"}
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    json.dump(result, out)
sys.exit(args.exit)

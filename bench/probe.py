"""`python -m bench.probe module:function '<json kwargs>'`: one measured call in a fresh interpreter.

Prints one JSON line: the function's result (a dict) plus `maxrss_mb`, the peak RSS of this process.
"""

from __future__ import annotations

import importlib
import json
import sys

from bench.measure import peak_rss_mb


def main(argv: list[str]) -> int:
    target, arguments = argv
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**json.loads(arguments))
    print(json.dumps({**result, "maxrss_mb": round(peak_rss_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

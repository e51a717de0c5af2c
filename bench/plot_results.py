"""Plot saved `lmi-deploy bench --output json` results (one or more files) into one PNG.

    python bench/plot_results.py OUT.png RESULT.json[:LABEL] [RESULT.json[:LABEL] ...]

A LABEL replaces the target name the results were saved under.
"""

from __future__ import annotations

import json
import sys

from lmi_deploy.bench import plot


def main(argv: list[str]) -> None:
    out, files = argv[0], argv[1:]
    summaries = []
    for spec in files:
        path, _, label = spec.partition(":")
        with open(path) as handle:
            summaries += [{**summary, "target": label or summary["target"]} for summary in json.load(handle)]
    plot(summaries, out)
    print(f"{out}: {len(summaries)} points from {len(files)} file(s)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The reference of `waas workflows list` (bench_cli.py): one GET with the standard library.

Usage: python stdlib_list.py API_URL TOKEN. Prints the workflows as JSON.
"""

from __future__ import annotations

import json
import sys
import urllib.request


def main() -> None:
    request = urllib.request.Request(
        sys.argv[1] + "/workflows", headers={"Authorization": f"Bearer {sys.argv[2]}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        print(json.dumps(json.load(answer)["workflows"], indent=2))


if __name__ == "__main__":
    main()

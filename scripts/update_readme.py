"""Re-run every example in README.md and paste its real output back in.

README examples are ```console blocks: a `$ bertcalc ...` line, then the output. tests/test_docs.py fails
when one is out of date; this script brings them up to date.

    python scripts/update_readme.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```console\n\$ (bertcalc [^\n]+)\n(.*?)^```", re.S | re.M)


def run(command: str) -> str:
    out = subprocess.run([sys.executable, "-m", "bertcalc", *command.split()[1:]], capture_output=True, text=True,
                         env={"NO_COLOR": "1", "COLUMNS": "200", "PATH": ""}, check=True)
    return "\n".join(line.rstrip() for line in out.stdout.strip().splitlines()) + "\n"


def main() -> int:
    text = README.read_text()
    new = BLOCK.sub(lambda m: f"```console\n$ {m.group(1)}\n{run(m.group(1))}```", text)
    if new != text:
        README.write_text(new)
        print("README.md updated")
    else:
        print("README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

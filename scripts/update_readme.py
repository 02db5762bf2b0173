"""Re-run every example in README.md and paste its real output back in.

README examples are ```console blocks: a `$ bertcalc ...` line, then the output. tests/test_docs.py fails
when one is out of date; this script brings them up to date.

Examples that name a Hub model id run against the test suite's local Hub (tests/hubserver.py, on 127.0.0.1,
serving a recorded copy of google-bert/bert-base-uncased), with a fresh, empty HF cache: no network is used.

    python scripts/update_readme.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```console\n\$ (bertcalc [^\n]+)\n(.*?)^```", re.S | re.M)


def run(command: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "bertcalc", *command.split()[1:]], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    if out.returncode not in (0, 1):
        sys.exit(f"update_readme: {command!r} failed: {out.stderr.strip()}")
    return "\n".join(line.rstrip() for line in out.stdout.strip().splitlines()) + "\n"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.hubserver import HubServer, readme_env, readme_repos

    text = README.read_text()
    with HubServer(readme_repos()) as hub, tempfile.TemporaryDirectory() as home:
        env = readme_env(Path(home), hub.url)
        new = BLOCK.sub(lambda m: f"```console\n$ {m.group(1)}\n{run(m.group(1), env)}```", text)
    if new != text:
        README.write_text(new)
        print("README.md updated")
    else:
        print("README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs a page's local walkthrough as written (docs/local.md), against running
local servers, and checks every answer it shows.

  python3 infra/docs-walkthrough.py docs/local.md <base URL> [<base URL with SINGLE_SESSION=false>]

A walkthrough block is a ```sh block right after a line `<!-- walkthrough -->`
(or `<!-- walkthrough SINGLE_SESSION=false -->`, run against the second server).
Each line `# → <answer>` is what the command before it prints; `…` stands for any
text. http://127.0.0.1:3000 in a block is replaced by the server's URL. Later
blocks run after the first block's opening lines (up to its first empty line),
as they would in the reader's shell.
"""
import re
import subprocess
import sys


def blocks(readme):
    found = []
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        marker = re.fullmatch(r"<!-- walkthrough( SINGLE_SESSION=false)? -->", line.strip())
        if not marker:
            continue
        assert lines[i + 1].strip() == "```sh", f"line {i + 2}: a walkthrough marker must precede a ```sh block"
        end = lines.index("```", i + 2)
        found.append((bool(marker.group(1)), "\n".join(lines[i + 2:end]) + "\n"))
    return found


def pattern(answer):
    return "".join(".*?" if part == "…" else re.escape(part) for part in re.split("(…)", answer))


def run(preamble, block, base):
    script = (preamble + block).replace("http://127.0.0.1:3000", base)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    got = out.stdout.splitlines()
    want = [line[len("# → "):] for line in block.splitlines() if line.startswith("# → ")]
    failures = []
    if out.returncode != 0:
        failures.append(f"exit {out.returncode}: {out.stderr.strip()}")
    if len(got) != len(want):
        failures.append(f"{len(want)} answers documented, {len(got)} printed")
    for i, answer in enumerate(want):
        printed = got[i] if i < len(got) else "<nothing>"
        if not re.fullmatch(pattern(answer), printed):
            failures.append(f"answer {i + 1}: documented {answer}\n    printed {printed}")
    return len(want), failures


def main():
    readme, base = open(sys.argv[1]).read(), sys.argv[2]
    second = sys.argv[3] if len(sys.argv) > 3 else None
    found = blocks(readme)
    assert found, f"no walkthrough block in {sys.argv[1]}"
    preamble = found[0][1].split("\n\n")[0] + "\n"
    total, failures = 0, []
    for index, (multi_session, block) in enumerate(found):
        if multi_session and second is None:
            failures.append(f"block {index + 1} needs a SINGLE_SESSION=false server")
            continue
        n, errors = run("" if index == 0 else preamble, block, second if multi_session else base)
        total += n
        failures += [f"block {index + 1}: {e}" for e in errors]
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    print(f"{sys.argv[1]} walkthrough: {len(found)} blocks, {total} answers, {len(failures)} differ")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

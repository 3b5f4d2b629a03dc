"""What the benchmark scripts share: writing their table into docs/benchmarks.md."""

import os


def write_block(path, name, heading, text):
    """Put `text` between the `<!-- NAME:start -->` and `<!-- NAME:end -->`
    markers of the markdown file `path`, or append it under `heading`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}\n{end}"
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if start in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + f"\n\n## {heading}\n\n{block}\n"
    with open(path, "w") as f:
        f.write(new)

"""What the benchmark scripts share: writing their table into docs/benchmarks.md,
and measuring peak memory."""

import os
import threading
import time


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


def rss_bytes():
    """This process's resident set, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest resident set seen by a sampling thread while the block runs."""

    def __enter__(self):
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

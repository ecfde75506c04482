"""Run the real `summarize` entry point with one step made slow by a native call that ignores signals.

`SLOW=generate`: the model `slow` (a fake engine on the tiny model's tokenizer) answers the first batch
(`STALL_AFTER` batches) at once and then spends tens of seconds in hashlib's PBKDF2, a C loop that, like
a real generate(), does not return to Python when a signal arrives. `SLOW=convert`: the CTranslate2
conversion does the same before it starts. `STALL_MARK=PATH`: the file is created as the stall begins, so a
test waits on that condition rather than on a guessed sleep. `SLOW_KEEP=N`: a summary is the first N
tokens of its input (4), so a test can have summaries that wrap on a narrow screen.
Used by test_never_lose_work.py as `python tests/slow_launcher.py ARGS...`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def native_stall() -> None:
    mark = os.environ.get("STALL_MARK")
    if mark:
        Path(mark).touch()
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 50_000_000)  # tens of seconds, all in C


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    mode = os.environ.get("SLOW", "")
    tiny = Path(os.environ["TINY_MODEL"])
    if mode == "convert":
        from summarize_cli.model.backends import ct2_backend

        real = ct2_backend._convert_into

        def slow_convert(*args, **kwargs):
            native_stall()
            return real(*args, **kwargs)

        ct2_backend._convert_into = slow_convert
    else:
        from summarize_cli.model.engine import Engine, register_engine
        from summarize_cli.model.source import ModelSource
        from summarize_cli.model.tokenizer import TextTokenizer

        class SlowBackend:
            name, device, precision = "slow", "cpu", "float32"

            def __init__(self):
                self.notes: list[str] = []
                self.calls = 0

            def check(self, settings):
                return []

            def generate(self, inputs, settings):
                self.calls += 1
                if self.calls > int(os.environ.get("STALL_AFTER", "1")):
                    native_stall()
                keep = int(os.environ.get("SLOW_KEEP", "4"))  # tokens of its input a summary repeats
                return [list(i[:keep]) for i in inputs]

        def slow_engine(**options):
            return Engine(ModelSource("slow", tiny, "slow"), SlowBackend(), TextTokenizer.from_dir(tiny))

        register_engine("slow", slow_engine)
    from summarize_cli.cli.app import main as summarize

    summarize()


if __name__ == "__main__":
    main()

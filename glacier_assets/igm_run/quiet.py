"""A quiet IGM child: TensorFlow/XLA's C++ start-up lines dropped from its stderr.

TensorFlow 2.16+ logs through Abseil, and the lines it writes before `absl::InitializeLog()`
(the XLA service, the compiled cluster, ...) ignore `TF_CPP_MIN_LOG_LEVEL`. They reach the main
job's console through the child's inherited stderr, a dozen per glacier. `drop_native_chatter`
routes the process's file descriptor 2 through a thread that drops Abseil INFO lines and the
notice about them; everything else (warnings, errors, tracebacks) passes unchanged.
"""

from __future__ import annotations

import atexit
import os
import re
import threading

CHATTER = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                     rb"|I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] )")


def drop_native_chatter(pattern: re.Pattern = CHATTER) -> None:
    """From now on, lines written to fd 2 (by C++ or Python) that match `pattern` are dropped.
    At exit fd 2 is restored and what is still in the pipe is written out first."""
    read_fd, write_fd = os.pipe()
    original = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump() -> None:
        with os.fdopen(read_fd, "rb") as src, os.fdopen(os.dup(original), "wb", buffering=0) as dst:
            for line in src:
                if not pattern.match(line):
                    dst.write(line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        os.dup2(original, 2)  # closes the pipe's last write end: the pump sees its end
        thread.join(timeout=5)

    atexit.register(restore)

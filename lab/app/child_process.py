"""How the campaign starts a helper process (the report writer, the live view)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

#: A child process out of the terminal's reach of Ctrl-C (a new session; on Windows, a new
#: process group): the signal is the campaign's, which ends its children itself.
OWN_SESSION: dict[str, Any] = (
    {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}   # the Win32 constant
    if sys.platform == "win32" else {"start_new_session": True})

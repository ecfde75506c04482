"""A model load started before the command line is parsed, kept for the run that asks for exactly it.

Importing Typer, Click and this package and parsing the command line take about 100 ms, and loading the
model (native code, without the GIL) 50 to 100 ms more: started first, the load runs beside them. The
caller (see summarize_cli.cli.early) guesses what the run will load; the run takes the load only if it
asks for the same one (same folder, device, precision, threads and layout), and drops it otherwise."""

from __future__ import annotations

from collections.abc import Callable, Hashable

_loads: dict[Hashable, object] = {}


def start(guess: Callable[[], tuple[Hashable, object] | None]) -> None:
    """Run `guess`: it returns (what a run would ask for, the load it started), or None to start nothing.
    It runs here, in the caller's thread, until its load is under way in a thread of its own: what it
    imports the run imports anyway, and a load started sooner is done sooner. Whatever it raises is
    dropped: the run meets the same problem and says it."""
    try:
        made = guess()
    except Exception:  # noqa: BLE001 - a guess that fails only means no early load
        return
    if made is not None:
        _loads[made[0]] = made[1]


def take(request: Hashable) -> object | None:
    """The load started early for `request`, else None; any other early load is dropped (its memory goes
    once its thread finishes), since a process makes one load of a kind."""
    found = _loads.pop(request, None)
    _loads.clear()
    return found

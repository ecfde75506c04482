"""The run report: counts of what happened become the lines the user reads and the exit code, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from summarize_cli.documents import Problem, Result
from summarize_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM

UNKNOWN_WARNING_SHARE = 0.1  # above this share of unknown-token text, the model cannot read the language
FEW = 3  # documents named one by one for each kind of warning; beyond that, one line with a count
# warnings that recur across documents, by how they begin, with how the closing count line says them
RECURRING = (
    ("truncated from ", "were truncated to the model's input limit (--long truncate)"),
    ("chunk summaries did not shrink", "had chunk summaries too long to reduce, so their final pass was truncated"),
)
MULTILINGUAL_MODEL = "csebuetnlp/mT5_multilingual_XLSum"


@dataclass
class RunReport:
    """What a run did so far. Each method returns the lines to show; `finish` also gives the exit code."""

    expected: int | None = None  # results expected (failures included), None when datasets or jsonl hide it
    already_done: int = 0  # inputs left out by --skip-existing
    destination: str | None = None  # the folder or file written, if any
    model_name: str = ""
    verbose: bool = False  # name every document a warning is about, however many
    noun: tuple[str, str] = ("summary", "summaries")  # what was written (--extract writes texts)
    done: int = 0
    failures: list[Problem] = field(default_factory=list)
    skips: list[Problem] = field(default_factory=list)
    unreadable: list[Result] = field(default_factory=list)
    warned: dict[str, int] = field(default_factory=dict)  # documents per kind of recurring warning
    passed_through: int = 0  # documents already shorter than a summary, kept as they are
    run_info: dict = field(default_factory=dict)  # how summaries were made, where a result does not say
    method: str = "auto"  # --method: with auto, the summaries made extractively are counted at the end
    extractive: int = 0

    def result(self, result: Result) -> list[str]:
        """A summary was written: its warnings, each naming the document, until a kind recurs past FEW."""
        self.done += 1
        self.passed_through += result.passthrough
        self.extractive += result.fallback
        # a text kept as it is has no summary to be poor; one routed to a model of its own (--model-for) is
        # not the default model's to read
        routed = result.run_info is not None and result.run_info.get("model") not in (None, self.model_name)
        if result.unknown_share > UNKNOWN_WARNING_SHARE and not result.passthrough and not routed:
            self.unreadable.append(result)
        lines = []
        for warning in result.warnings:
            kind = next((start for start, _ in RECURRING if warning.startswith(start)), None)
            if kind is not None:
                self.warned[kind] = self.warned.get(kind, 0) + 1
                if self.warned[kind] > FEW and not self.verbose:
                    continue
            lines.append(f"Warning: {result.source}: {warning}")
        if self.verbose and self.noun[0] == "summary":
            how = "from the cache" if result.cached else f"in {result.seconds:.2f} s"
            sent = result.sent_tokens or result.input_tokens
            whole = f" (of {result.input_tokens})" if sent != result.input_tokens else ""
            lines.append(
                f"{result.source}: {count(sent, 'token')} to the model{whole}, "
                f"{count(result.chunks, 'chunk')}{', truncated' if result.truncated else ''}, {how}"
            )
        return lines

    def problem(self, problem: Problem) -> list[str]:
        (self.skips if problem.skipped else self.failures).append(problem)
        word = "Skipped" if problem.skipped else "Failed"
        return [f"{word} {problem.source}: {problem.reason}"]

    @property
    def left(self) -> int | None:
        if self.expected is None:
            return None
        return max(self.expected - self.done - len(self.failures) - len(self.skips), 0)

    def stopped(self, signal_exit: int) -> tuple[list[str], int]:
        """Ctrl-C (130) or SIGTERM (143): what was done and what is left."""
        how = {EXIT_SIGINT: "Interrupted", EXIT_SIGTERM: "Terminated"}.get(signal_exit, "Stopped")
        left = "" if self.left is None else f", {self.left} left"
        verb = "summarised" if self.noun[0] == "summary" else "extracted"
        return [f"{how}: {self.done} {verb}{left}."], signal_exit

    def finish(self) -> tuple[list[str], int]:
        """The closing lines and the exit status: 1 when any input failed or nothing was summarised."""
        lines = []
        for start, phrase in RECURRING:
            more = self.warned.get(start, 0) - FEW
            if more > 0 and not self.verbose:
                lines.append(f"Warning: {count(more, 'more document')} {phrase}; -v names each.")
        if self.unreadable:
            names = ", ".join(f"{r.source} ({r.unknown_share:.0%})" for r in self.unreadable[:5])
            more = f" and {len(self.unreadable) - 5} more" if len(self.unreadable) > 5 else ""
            # a route helps only a document routed by its language: one too short or mixed to route by goes
            # to the default model whatever --model-for says, so its language is no advice
            languages = sorted(
                {r.document.language for r in self.unreadable if r.document.language and r.document.routable}
            )
            advice = " ".join(f"--model-for {language}={MULTILINGUAL_MODEL}" for language in languages)
            offline = " ".join(f"--model-for {language}=extractive" for language in languages)
            lines.append(
                f"Warning: {count(len(self.unreadable), 'document is', 'documents are')} mostly text that "
                f"{self.model_name} cannot read "
                f"(share of unknown-token text: {names}{more}); "
                f"{'its summary' if len(self.unreadable) == 1 else 'their summaries'} will be poor. Send "
                f"{'it' if len(self.unreadable) == 1 else 'them'} to a model that reads "
                f"{'its' if len(self.unreadable) == 1 else 'their'} language: {advice or '-m ' + MULTILINGUAL_MODEL}, "
                f"or summarise {'it' if len(self.unreadable) == 1 else 'them'} extractively, with nothing to "
                f"download: {offline or '--method extractive'}."
            )
        if self.passed_through == 1:
            lines.append("1 document was already shorter than a summary and was kept as it is (--force summarises it).")
        elif self.passed_through:
            lines.append(
                f"{self.passed_through} documents were already shorter than a summary and were kept as they are "
                "(--force summarises them)."
            )
        if self.extractive and self.method == "auto":
            lines.append(
                f"{count(self.extractive, 'summary was', 'summaries were')} made extractively "
                "(--method auto, without the model)."
            )
        if self.destination is not None and self.done:
            lines.append(f"Wrote {count(self.done, *self.noun)} to {self.destination}.")
        if self.already_done:
            whose = "whose summary exists" if self.already_done == 1 else "whose summaries exist"
            lines.append(f"Skipped {count(self.already_done, 'input')} {whose} (--skip-existing).")
        if self.skips and (self.failures or self.done):
            lines.append(f"{count(len(self.skips), 'input')} skipped.")
        if self.failures:
            lines.append(f"{count(len(self.failures), 'input')} failed:")
            lines.extend(f"  {problem.source}: {problem.reason}" for problem in self.failures)
            return lines, EXIT_FAILED
        if self.done == 0 and not self.already_done:
            lines.append("Nothing was summarised." if self.noun[0] == "summary" else "Nothing was extracted.")
            return lines, EXIT_FAILED
        return lines, EXIT_OK


def count(n: int, one: str, many: str | None = None) -> str:
    """`1 summary`, `2 summaries`: numbers with the word that agrees."""
    return f"{n} {one if n == 1 else (many or one + 's')}"

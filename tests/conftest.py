"""Shared fixtures and helpers: a tiny random-weight T5 with a SentencePiece tokenizer trained on samples/,
a fake exact engine (`echo`) on its tokenizer, the CLI runner and the option lists that keep runs fast.

Test files import the helpers with `from conftest import ...` (tests/ is not a package)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["SUMMARIZE_CONFIG"] = "/nonexistent/summarize-cli-tests/config.toml"  # no user config in tests
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _enter_loopback_only_network() -> bool:
    """Run the whole suite (and every process it starts) in a private network namespace where only
    loopback exists: nothing a test does can reach beyond this machine, and Ray, which registers the
    machine's other address even when told 127.0.0.1, has none to register. Needs root (CI runs as root);
    elsewhere the Ray tests are skipped."""
    import ctypes
    import subprocess

    if os.environ.get("SUMMARIZE_TEST_NETNS") == "entered":
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET, for this (the main) thread and all it starts
            return False
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    os.environ["SUMMARIZE_TEST_NETNS"] = "entered"
    return True


LOOPBACK_ONLY = _enter_loopback_only_network()
if LOOPBACK_ONLY:  # a fresh Ray temp folder: no test finds another session's cluster
    import tempfile

    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ.pop("RAY_ADDRESS", None)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

# Generation options that keep the tiny model quick (subprocess tests, which check stderr, add nothing else).
GENERATE = ["--max-length", "12", "--min-length", "2", "--num-beams", "2"]
# In-process CLI runs: quiet, with the result cache.
CACHED = [*GENERATE, "-q"]
# In-process CLI runs: quiet, neither reading nor writing the result cache (`summarize eval` never caches
# and has no --no-cache: it takes CACHED).
FAST = [*CACHED, "--no-cache"]
# test_ray asserts its max length of 10.
FAST_RAY = ["--max-length", "10", "--min-length", "2", "--num-beams", "2", "-q", "--no-cache"]


def run(args: list[str], input: str | None = None):
    """`summarize ARGS` in process (exceptions propagate: an unexpected traceback fails the test)."""
    from summarize_cli.cli.app import app

    return CliRunner().invoke(app, args, input=input, catch_exceptions=False)


def usage_error(result) -> str:
    """The message of a usage error (exit status 2): the text of its one `Error: ...` line on stderr (Click's
    usage lines may stand above it). An option that no longer exists gives "No such option: ..." here."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    errors = [line.removeprefix("Error: ") for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


class EchoBackend:
    """Returns the first `keep` tokens of each input after the prefix: the 'summary' is the text's start.

    The pipeline tests give `prefix_len` and `keep`; the fake engine gives neither, and each call takes
    them from its settings: the prefix is `settings.prefix`, `keep` is `settings.max_length`."""

    name, device, precision = "echo", "cpu", "float32"

    def __init__(self, prefix_len: int | None = None, keep: int | None = None, tokenizer=None):
        self.prefix_len, self.keep, self.tokenizer = prefix_len, keep, tokenizer
        self.batches: list[list[int]] = []
        self.notes: list[str] = []

    def check(self, settings) -> list[str]:
        return []

    def generate(self, inputs, settings):
        self.batches.append([len(i) for i in inputs])
        start = self.prefix_len
        if start is None:
            prefix = self.tokenizer.encode(settings.prefix).ids if settings.prefix else []
            start = len(self.tokenizer.front) + len(prefix)
        keep = settings.max_length if self.keep is None else self.keep
        return [i[start : start + keep] for i in inputs]


class Echo:
    """What the `echo` model says: the first `max_length` tokens of the document's text."""

    name = "echo"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def summary(self, text: str, max_length: int = 12) -> str:
        """As the product makes it: a summary that stopped at max_length is cut back to its last sentence."""
        from summarize_cli.sentences import trim_to_sentence

        ids = list(self.tokenizer.encode(text).ids[:max_length])
        summary = self.tokenizer.decode(ids)
        if len(ids) >= max_length - 1:
            summary = trim_to_sentence(summary) or summary
        return summary

    def summary_of(self, path: Path, max_length: int = 12) -> str:
        """The summary of a file, read as the CLI reads it (Markdown, HTML, ... become prose first)."""
        from summarize_cli.inputs.formats import detect, extract

        return self.summary(extract(path.read_bytes(), detect(path.name)), max_length)


def build_tiny_t5(out: Path, corpus_texts: list[str], vocab_size: int = 1500) -> Path:
    """A 2-layer T5 with random weights and a tokenizer trained on `corpus_texts`, saved to `out`."""
    import sentencepiece as spm
    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(corpus_texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out / "spiece"),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    corpus.unlink()
    tokenizer = T5Tokenizer.from_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 0, 0, 1
    config.task_specific_params = {
        "summarization": {
            "prefix": "summarize: ",
            "num_beams": 4,
            "min_length": 30,
            "max_length": 200,
            "length_penalty": 2.0,
            "no_repeat_ngram_size": 3,
            "early_stopping": True,
        }
    }
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(str(out))
    return out


def build_tiny_bart_family(out: Path, corpus_texts: list[str], kind: str) -> Path:
    """A 1-layer BART (with forced <s> and </s>, like facebook/bart-large-cnn) or Pegasus, random weights,
    with a byte-level BPE tokenizer trained on `corpus_texts`; no task_specific_params."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        PegasusConfig,
        PegasusForConditionalGeneration,
        PreTrainedTokenizerFast,
    )

    out.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus_texts, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    template = "<s> $A </s>" if kind == "bart" else "$A </s>"
    bpe.post_processor = TemplateProcessing(single=template, special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=512,
    )
    tokenizer.save_pretrained(str(out))
    shape = dict(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=512,
        pad_token_id=1,
        eos_token_id=2,
        forced_eos_token_id=2,
    )
    torch.manual_seed(0)
    if kind == "bart":
        model = BartForConditionalGeneration(BartConfig(**shape, bos_token_id=0, decoder_start_token_id=2))
        model.generation_config.forced_bos_token_id = 0
    else:
        model = PegasusForConditionalGeneration(PegasusConfig(**shape, decoder_start_token_id=1))
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Converted models and cached results go to a folder of this test session's own."""
    folder = tmp_path_factory.mktemp("summarize-cache")
    os.environ["SUMMARIZE_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.iterdir()) if p.is_file()]
    return build_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-t5", texts)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    """The tiny model's tokenizer, loaded once (read only: nothing may change it)."""
    from summarize_cli.model.tokenizer import TextTokenizer

    return TextTokenizer.from_dir(tiny_model)


@pytest.fixture(scope="session", params=["bart", "pegasus"])
def bart_family_model(request, tmp_path_factory) -> Path:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.iterdir()) if p.is_file()]
    return build_tiny_bart_family(tmp_path_factory.mktemp("models") / request.param, texts, request.param)


@pytest.fixture(scope="session")
def local_ray():
    """A Ray instance on 127.0.0.1 with two CPUs, shared by the tests that need one (skipped without Ray)."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    if not LOOPBACK_ONLY:
        pytest.skip("Ray tests run only in a loopback-only network namespace (unshare -n, as root)")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def env_model(tiny_model, monkeypatch) -> Path:
    """Make the tiny model the default for CLI invocations in this test."""
    monkeypatch.setenv("SUMMARIZE_MODEL", str(tiny_model))
    return tiny_model


@pytest.fixture
def echo_model(tiny_model, tiny_tokenizer, monkeypatch):
    """Make `echo` the default model of CLI invocations in this test: a fake engine, registered with
    `register_engine`, on the tiny model's folder and tokenizer whose backend echoes the start of each
    text (see EchoBackend), so that summaries are exact and no model runs. Yields an Echo to say what
    the summary of a text is."""
    from summarize_cli.model.engine import Engine, register_engine, unregister_engine
    from summarize_cli.model.source import ModelSource

    def load(**options) -> Engine:
        source = ModelSource(Echo.name, tiny_model, "echo")
        return Engine(source, EchoBackend(tokenizer=tiny_tokenizer), tiny_tokenizer)

    register_engine(Echo.name, load)
    monkeypatch.setenv("SUMMARIZE_MODEL", Echo.name)
    yield Echo(tiny_tokenizer)
    unregister_engine(Echo.name)

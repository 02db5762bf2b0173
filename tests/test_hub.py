"""Hub model ids: the real huggingface_hub client against a real HTTP server on 127.0.0.1 (tests/hubserver.py).

The server serves repos built here from configs with ``safetensors``; huggingface_hub is pointed at it with
``HF_ENDPOINT`` (see ``HubEnv`` in conftest.py for how its settings are re-read). Nothing is mocked.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bertcalc

from .conftest import ROOT
from .test_cli import _bad

pytest.importorskip("huggingface_hub")
pytest.importorskip("safetensors")
np = pytest.importorskip("numpy")

from .hubserver import HubServer, Repo, checkpoint_repo, fill_cache, header_length  # noqa: E402

TINY = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 50, "hidden_size": 16,
        "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 40,
        "type_vocab_size": 2, "torch_dtype": "float32", "id2label": {"0": "a", "1": "b"}}
OTHER = {**TINY, "num_hidden_layers": 3, "hidden_size": 32, "intermediate_size": 64}
TOKEN = "hf_test_token_for_the_gated_repo"


def _legacy(name: str) -> str:
    """Google's original BERT names: LayerNorm.gamma / LayerNorm.beta, as bert-base-uncased stores them."""
    return name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")


def _repos() -> dict[str, Repo]:
    small = json.dumps(TINY).encode()
    huge_header = struct.pack("<Q", 2**62) + b'{"a":{}}'
    beyond = struct.pack("<Q", 10_000) + b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + b"\0" * 4
    legacy = checkpoint_repo({**TINY, "architectures": ["BertForMaskedLM"]}, head="pretraining", rename=_legacy,
                             extra={"bert.embeddings.position_ids": np.arange(40, dtype="int64")[None]})
    return {
        "org/tiny-bert": checkpoint_repo(TINY, refs=("main", "v1")),
        "org/other-bert": checkpoint_repo(OTHER),
        "org/sharded-bert": checkpoint_repo(TINY, shards=3),
        "org/legacy-bert": legacy,
        "org/half-bert": checkpoint_repo({**TINY, "torch_dtype": "float16", "quantization_config": {
            "quant_method": "bitsandbytes", "load_in_8bit": True}}, dtype="float16"),
        "org/gated-bert": checkpoint_repo(TINY, token=TOKEN),
        "bad/huge-header": Repo({"config.json": small, "model.safetensors": huge_header}),
        "bad/header-beyond-file": Repo({"config.json": small, "model.safetensors": beyond}),
        "bad/huge-config": Repo({"config.json": b"{" + b" " * (2 << 20) + b"}"}),
        "bad/stalls": Repo({"config.json": small}, stall=("config.json",)),
        "bad/stalls-on-header": Repo({"config.json": small, "model.safetensors": beyond},
                                     stall=("GET:model.safetensors",)),
        "bad/no-weights": Repo({"config.json": small}),
    }


@pytest.fixture(scope="module")
def hub_server():
    with HubServer(_repos()) as server:
        yield server


def _count_of(config: dict) -> int:
    return bertcalc.count(bertcalc.config_class("bert")(**{k: v for k, v in config.items()
                                                          if k in bertcalc.BertConfig.model_fields})).total_parameters


def _requests(server, since: int = 0):
    return server.served()[since:]


def _no_partial_files(cache: Path) -> None:
    left = [p for p in cache.rglob("*") if p.name.endswith(".incomplete") or ".tmp" in p.name]
    assert not left, left


# ------------------------------------------------------------------------------------------ count and friends


def test_count_an_id_downloads_config_json_alone(cli, hub_env) -> None:
    r = cli("count", "org/tiny-bert", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["total_parameters"] == _count_of(TINY)
    got = [(s.method, s.file) for s in hub_env.server.served() if s.repo == "org/tiny-bert"]
    assert ("GET", "config.json") in got and all(f == "config.json" for _, f in got), got
    snap = next(hub_env.cache.glob("models--org--tiny-bert/snapshots/*"))
    assert [p.name for p in snap.iterdir()] == ["config.json"]  # the HF cache layout, config only


def test_the_cache_answers_first(cli, hub_env) -> None:
    assert cli("count", "org/tiny-bert").exit_code == 0
    before = len(hub_env.server.served())
    r = cli("count", "--model", "org/tiny-bert")
    assert r.exit_code == 0 and "org/tiny-bert" in r.stdout
    assert len(hub_env.server.served()) == before, "a cached config must not cost a request"


def test_header_names_the_id_and_the_table_is_the_configs(cli, hub_env) -> None:
    r = cli("count", "org/tiny-bert")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("org/tiny-bert  ·  BertModel")
    assert f"{_count_of(TINY):,}" in r.stdout


def test_compare_memory_shapes_flops_take_ids(cli, hub_env) -> None:
    d = json.loads(cli("compare", "org/tiny-bert", "org/other-bert:layers=4", "base", "-f", "json").stdout)
    assert d["configs"][0]["total_parameters"] == _count_of(TINY)
    assert d["configs"][1]["config"]["num_hidden_layers"] == 4
    r = cli("memory", "org/tiny-bert", "--batch", "2", "--seq", "16", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["peak_bytes"] > 0
    assert cli("shapes", "org/other-bert").exit_code == 0
    assert cli("flops", "-m", "org/other-bert", "--batch", "1", "--seq", "8").exit_code == 0


def test_library_api(hub_env) -> None:
    assert bertcalc.count("org/tiny-bert").total_parameters == _count_of(TINY)
    assert bertcalc.memory("org/tiny-bert", batch=1, seq=8).peak_bytes > 0
    assert bertcalc.inspect("org/tiny-bert").ok
    r = bertcalc.resolve(model="org/tiny-bert", revision="v1")
    assert r.label == "org/tiny-bert@v1"
    with pytest.raises(bertcalc.BertcalcError, match="no such model"):
        bertcalc.count("org/missing")


def test_preset_wins_and_an_existing_path_wins_over_an_id(cli, hub_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "tiny-bert").mkdir()
    (tmp_path / "org" / "tiny-bert" / "config.json").write_text(json.dumps(OTHER))
    d = json.loads(cli("count", "org/tiny-bert", "-f", "json").stdout)
    assert d["total_parameters"] == _count_of(OTHER)  # the local folder, not the Hub repo
    assert not hub_env.server.served() or all(s.repo != "org/tiny-bert" for s in hub_env.server.served())
    assert json.loads(cli("count", "base", "-f", "json").stdout)["total_parameters"] == 109_482_240


def test_a_bare_unknown_name_is_a_preset_typo(cli) -> None:
    _bad(cli("count", "bsae"), "unknown preset 'bsae'", "did you mean 'base'", "org/name")


def test_model_given_twice(cli) -> None:
    _bad(cli("count", "base", "--preset", "large"), "give it once")
    _bad(cli("count", "base", "--model", "large"), "give one")


def test_revision(cli, hub_env) -> None:
    r = cli("count", "org/tiny-bert", "--revision", "v1")
    assert r.exit_code == 0, r.stderr
    assert "org/tiny-bert@v1" in r.stdout
    _bad(cli("count", "org/tiny-bert", "--revision", "nope"), "org/tiny-bert", "no revision 'nope'", "--revision")


def test_revision_on_a_preset_is_a_note(cli) -> None:
    r = cli("count", "--preset", "tiny", "--revision", "v1")
    assert r.exit_code == 0 and "apply to a Hub model id" in r.stderr


# --------------------------------------------------------------------------------------------------- offline


def test_offline_from_a_prefilled_cache(cli, hub_env, tmp_path: Path) -> None:
    repos = _repos()
    cache = tmp_path / "elsewhere"  # HF_HUB_CACHE wins over HF_HOME/hub
    fill_cache(cache, "org/tiny-bert", repos["org/tiny-bert"], ("config.json", "model.safetensors"))
    fill_cache(cache, "org/other-bert", repos["org/other-bert"])
    hub_env.set(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    assert json.loads(cli("count", "org/tiny-bert", "-f", "json").stdout)["total_parameters"] == _count_of(TINY)
    assert cli("compare", "org/tiny-bert", "org/other-bert", "base").exit_code == 0
    assert cli("memory", "org/other-bert", "--batch", "1", "--seq", "8").exit_code == 0
    r = cli("inspect", "org/tiny-bert", "--download-bytes")
    assert r.exit_code == 0, r.stderr
    assert "full match" in r.stdout and "downloaded: 0 bytes (read from the HF cache)" in r.stdout
    assert hub_env.server.served() == [], "offline means no request at all"


def test_offline_flag_and_revision_from_the_cache(cli, hub_env) -> None:
    fill_cache(hub_env.cache, "org/tiny-bert", _repos()["org/tiny-bert"])
    assert cli("count", "org/tiny-bert", "--offline", "--revision", "v1").exit_code == 0
    assert hub_env.server.served() == []


def test_offline_and_not_cached(cli, hub_env) -> None:
    hub_env.set(HF_HUB_OFFLINE="1")
    _bad(cli("count", "org/tiny-bert"), "org/tiny-bert", "not in the local Hugging Face cache", "offline")
    hub_env.set(HF_HUB_OFFLINE=None)
    _bad(cli("count", "org/tiny-bert", "--offline"), "org/tiny-bert", "not in the local Hugging Face cache")
    fill_cache(hub_env.cache, "org/tiny-bert", _repos()["org/tiny-bert"])  # config, but not the weights
    _bad(cli("inspect", "org/tiny-bert", "--offline"), "org/tiny-bert", "safetensors", "not in the local")
    assert hub_env.server.served() == []


# ---------------------------------------------------------------------------------------------------- inspect


def _header_end(repo: Repo, file: str) -> int:
    return 8 + header_length(repo.files[file])


def _assert_no_weight_byte_read(server, repo_id: str) -> None:
    repo = server.repos[repo_id]
    gets = [s for s in server.served("GET") if s.repo == repo_id and s.file.endswith(".safetensors")]
    assert gets, "the headers were not read remotely"
    for s in gets:
        assert s.status == 206 and s.range is not None, s
        assert s.range[1] < _header_end(repo, s.file), f"{s.file}: bytes {s.range} reach into the tensor data"


def test_inspect_reads_headers_only(cli, hub_env) -> None:
    r = cli("inspect", "org/tiny-bert", "--download-bytes", "-f", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["ok"] and d["matched"] == 39 and d["path"] == "org/tiny-bert"
    _assert_no_weight_byte_read(hub_env.server, "org/tiny-bert")
    repo = hub_env.server.repos["org/tiny-bert"]
    assert d["download_bytes"] == len(repo.files["config.json"]) + _header_end(repo, "model.safetensors")
    assert not list(hub_env.cache.rglob("*.safetensors")), "no weights in the cache"


def test_inspect_sharded(cli, hub_env) -> None:
    r = cli("inspect", "org/sharded-bert", "--download-bytes")
    assert r.exit_code == 0, r.stderr
    assert "model-00003-of-00003.safetensors" in r.stdout and "downloaded:" in r.stdout
    _assert_no_weight_byte_read(hub_env.server, "org/sharded-bert")
    shards = {s.file for s in hub_env.server.served("GET") if s.repo == "org/sharded-bert"}
    assert {"model.safetensors.index.json", "model-00001-of-00003.safetensors"} <= shards


def test_legacy_checkpoint_as_transformers_loads_it(cli, hub_env) -> None:
    """bert-base-uncased's layout: BertForPreTraining with 'bert.', gamma/beta, position_ids, seen as BertModel."""
    r = cli("inspect", "org/legacy-bert", "--head", "model", "-f", "json")
    assert r.exit_code == 0, r.stdout
    d = json.loads(r.stdout)
    assert d["ok"] and d["missing"] == [] and d["unexpected"] == [] and d["mismatched"] == []
    assert d["buffers"] == ["bert.embeddings.position_ids"]
    assert d["unused"] and all(n.startswith("cls.") for n in d["unused"])
    gamma = next(t for t in d["tensors"] if t["name"] == "bert.embeddings.LayerNorm.gamma")
    assert gamma["status"] == "matched" and "renamed to weight" in gamma["note"]
    assert any("gamma/beta" in n for n in d["notes"])
    assert "cls.predictions.transform.LayerNorm.gamma" in d["unused"]  # named as stored
    text = cli("inspect", "org/legacy-bert", "--head", "model").stdout
    assert "full match" in text and "unused (task head)" in text and "UNEXPECTED" not in text


def test_inspect_shows_the_stored_dtype_and_quantization(cli, hub_env) -> None:
    r = cli("inspect", "org/half-bert")
    assert r.exit_code == 0, r.stderr
    assert "stored dtype: F16" in r.stdout and "config dtype: float16" in r.stdout
    assert "quantization_config: bitsandbytes" in r.stdout
    d = json.loads(cli("inspect", "org/half-bert", "-f", "json").stdout)
    assert d["dtype"] == "float16" and d["quantization_config"]["quant_method"] == "bitsandbytes"
    assert list(d["stored_dtypes"]) == ["F16"]


def test_no_safetensors_in_the_repo(cli, hub_env) -> None:
    _bad(cli("inspect", "bad/no-weights"), "bad/no-weights", "neither model.safetensors nor")


# ------------------------------------------------------------------------------------------ auth and errors


def test_gated_repo_needs_a_token(cli, hub_env) -> None:
    _bad(cli("count", "org/gated-bert"), "org/gated-bert", "gated", "401", "hf auth login", "HF_TOKEN")
    hub_env.set(HF_TOKEN="hf_wrong")
    _bad(cli("count", "org/gated-bert"), "org/gated-bert", "gated", "403")
    hub_env.set(HF_TOKEN=TOKEN)
    assert cli("count", "org/gated-bert").exit_code == 0
    assert cli("inspect", "org/gated-bert").exit_code == 0
    assert all(s.authorized for s in hub_env.server.served() if s.repo == "org/gated-bert" and s.status == 200)


def test_gated_repo_with_the_token_file(cli, hub_env) -> None:
    hub_env.home.mkdir(parents=True, exist_ok=True)
    (hub_env.home / "token").write_text(TOKEN)  # where 'hf auth login' writes it (HF_HOME/token)
    hub_env.set()  # re-read the constants
    assert cli("count", "org/gated-bert").exit_code == 0


def test_unknown_repo(cli, hub_env) -> None:
    _bad(cli("count", "org/missing"), "org/missing", "no such model on the Hub (404)", "check the id")
    _bad(cli("inspect", "org/missing"), "org/missing", "404")


@pytest.mark.parametrize("bad", ["org/..", "org/a..b", "org--x/y", "org/-x", "org/a b", "org/" + "x" * 100, "org/"])
def test_malformed_ids(cli, bad: str) -> None:
    _bad(cli("count", bad), "Hub", "org/name")


def test_network_failure(cli, hub_env) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    hub_env.set(HF_ENDPOINT=f"http://127.0.0.1:{port}")
    _bad(cli("count", "org/tiny-bert"), "org/tiny-bert", "cannot reach the Hub", "--offline")


# ------------------------------------------------------------------------------------------------- hostile


def test_huge_header_length_is_refused_before_reading(cli, hub_env) -> None:
    _bad(cli("inspect", "bad/huge-header"), "bad/huge-header/model.safetensors", "header claims", "limit")
    gets = [s for s in hub_env.server.served("GET") if s.file == "model.safetensors"]
    assert [s.range for s in gets] == [(0, 7)]


def test_header_length_beyond_the_file(cli, hub_env) -> None:
    _bad(cli("inspect", "bad/header-beyond-file"), "bad/header-beyond-file/model.safetensors", "truncated")
    gets = [s for s in hub_env.server.served("GET") if s.file == "model.safetensors"]
    assert [s.range for s in gets] == [(0, 7)]


def test_huge_config_is_refused_before_download(cli, hub_env) -> None:
    _bad(cli("count", "bad/huge-config"), "bad/huge-config", "config.json is", "limit")
    assert not [s for s in hub_env.server.served("GET") if s.repo == "bad/huge-config"]
    assert not list(hub_env.cache.rglob("config.json"))


def test_a_stalling_server_is_bounded_by_the_timeout(cli, hub_env) -> None:
    hub_env.set(HF_HUB_ETAG_TIMEOUT="1", HF_HUB_DOWNLOAD_TIMEOUT="1")
    t0 = time.monotonic()
    _bad(cli("count", "bad/stalls"), "bad/stalls", "did not answer within the timeout", "HF_HUB_ETAG_TIMEOUT")
    _bad(cli("inspect", "bad/stalls-on-header"), "bad/stalls-on-header", "did not answer")
    assert time.monotonic() - t0 < 15
    _no_partial_files(hub_env.cache)
    assert not list(hub_env.cache.glob("models--bad--stalls/**/config.json")), "nothing of the stalled repo is kept"
    assert not list(hub_env.cache.rglob("*.safetensors"))


# ---------------------------------------------------------------------------------------- a real process


def test_a_real_process_reads_the_environment(hub_env) -> None:
    """The CLI as a user runs it: huggingface_hub reads HF_ENDPOINT and HF_HOME from the environment at start."""
    env = hub_env.subprocess_env()
    out = subprocess.run([sys.executable, "-m", "bertcalc", "count", "org/tiny-bert", "-f", "json"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_parameters"] == _count_of(TINY)
    out = subprocess.run([sys.executable, "-m", "bertcalc", "count", "org/missing"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    off = {**env, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "bertcalc", "count", "org/tiny-bert"], capture_output=True, text=True,
                         env=off, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr  # from the cache the first run filled


def test_without_huggingface_hub_an_id_says_what_to_install() -> None:
    code = ("import sys; sys.modules['huggingface_hub'] = None\n"
            "from bertcalc.cli import main; sys.argv = ['bertcalc', 'count', 'org/tiny-bert']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "bertcalc count: error: reading a model from the Hugging Face Hub needs huggingface_hub: "
        "pip install 'bertcalc[hub]'"]


def test_count_preset_never_imports_huggingface_hub() -> None:
    code = ("import sys\nfrom bertcalc.cli import main\nsys.argv = ['bertcalc', 'count', '--preset', 'base']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('huggingface_hub', 'httpx2', 'httpx', "
            "'bertcalc.hub') or m == 'bertcalc.hub')\nsys.stderr.write(repr(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stderr.strip() == "[]", out.stderr


def test_a_remote_header_is_validated_as_strictly_as_a_local_one() -> None:
    from bertcalc import checkpoint, hub

    dup = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], ' \
          b'"data_offsets": [4, 8]}}'
    with pytest.raises(checkpoint.CheckpointError, match="appears twice"):
        hub._parse("org/x/model.safetensors", dup, len(dup), 8 + len(dup) + 8)
    gap = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}'
    with pytest.raises(checkpoint.CheckpointError, match="unused"):
        hub._parse("org/x/model.safetensors", gap, len(gap), 8 + len(gap) + 8)
    ok = b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    tensors, _ = hub._parse("org/x/model.safetensors", ok, len(ok), 8 + len(ok) + 8)
    assert [t.name for t in tensors] == ["a"]

"""Checks ``weights_manifest.json`` against the installed keras.applications.

The manifest is data that the kapps weight loader trusts, so every fact in it is
checked here against an independent source:

* the schema (keys, types, uniqueness, sort order);
* keras.applications itself: every model function is covered, and file names,
  URLs and hashes are re-derived from the keras source text;
* keras' own download path: ``keras.utils.get_file`` is intercepted while real
  keras.applications models are built, and the requested (file, url, hash) must
  equal the manifest entry. A representative subset runs by default; set
  ``KAPPS_MANIFEST_FULL_CAPTURE=1`` to check all entries (several minutes);
* the genuine weight file in the shared folder (``KAPPS_SHARED_DIR``, default
  ``../shared`` beside the repository), whose sha256 and size must match.

torchvision's checkpoints (``"source": "torchvision"``) have their own schema here (section 7);
tests/test_torchvision_families.py checks their facts against the installed torchvision.

Uses only json, pathlib, inspect, importlib, ast, hashlib, re and keras (not kapps).
"""

import ast
import hashlib
import importlib
import inspect
import json
import os
import re
from pathlib import Path

import keras
import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFEST_PATH = REPO / "weights_manifest.json"

FILE_KEYS = {
    "file",
    "model",
    "include_top",
    "variant",
    "url",
    "size",
    "hash",
    "hash_source",
}
MODEL_KEYS = {"keras_function", "keras_module", "variant_keys", "imagenet"}
PROVENANCE_SOURCE = (
    "../shared/weights/PROVENANCE.txt (equals Keras' published sha256)"
)
KNOWN_FILE = "mobilenet_2_5_224_tf_no_top.h5"
KNOWN_SIZE = 2108140
KNOWN_SHA256 = (
    "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf"
)
CLASSICS = ("lenet5", "alexnet", "googlenet")
#: Classics whose torchvision variant has torchvision's checkpoint (``variant="torchvision"``; section 7).
TORCHVISION_CLASSICS = ("alexnet", "googlenet")
REGISTRY_NAMES = {
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
    "convnext_xlarge",
    "densenet121",
    "densenet169",
    "densenet201",
    *(f"efficientnet_b{i}" for i in range(8)),
    *(f"efficientnet_v2_b{i}" for i in range(4)),
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "inception_resnet_v2",
    "inception_v3",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "nasnet_mobile",
    "nasnet_large",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_v2",
    "resnet101_v2",
    "resnet152_v2",
    "vgg16",
    "vgg19",
    "xception",
    *(f"regnet{kind}{mf:03d}" for kind in "xy" for mf in (2, 4, 6, 8, 16, 32, 40, 64, 80, 120, 160, 320)),
    *(f"resnet_rs{depth}" for depth in (50, 101, 152, 200, 270, 350, 420)),
    *CLASSICS,
    "resnet18", "resnet34", "squeezenet1_0", "squeezenet1_1",
    *(f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")),
    "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "swin_t", "swin_s", "swin_b",
    "inception_v4", "inception_resnet_v1",
}
# Variant value types, per variant key.
VARIANT_TYPES = {"alpha": float, "resolution": int, "minimalistic": bool, "variant": str}
KERAS_HASH_SOURCE = re.compile(r"^keras\.applications\.(\w+) ")
TF_KERAS_HASH_SOURCE = re.compile(r"^tf_keras\.applications\.(regnet|resnet_rs) (WEIGHTS_HASHES|WEIGHT_HASHES)$")


# --------------------------------------------------------------------------
# helpers


def _load():
    with open(MANIFEST_PATH, encoding="utf-8") as f:
        return json.load(f)


MANIFEST = _load()
ALL_FILES = MANIFEST["files"]
MODELS = MANIFEST["models"]
#: Models and files whose source is torchvision (PyTorch checkpoints, section 7); the rest are Keras files.
TORCHVISION_MODELS = {k for k, v in MODELS.items() if v.get("source") == "torchvision"}
#: timm's models (a .safetensors file on the Hugging Face hub: Inception-v4): tests/test_inception_v4_family.py
#: checks the entry against timm's pretrained_cfg.
TIMM_MODELS = {k for k, v in MODELS.items() if v.get("source") == "timm"}
#: Models converted from a PyTorch checkpoint (torchvision's or timm's), not Keras files.
CHECKPOINT_MODELS = TORCHVISION_MODELS | TIMM_MODELS
#: Architectures without published ImageNet weights anywhere (beyond the classics' paper variants).
NO_WEIGHTS = ("inception_resnet_v1",)
TORCHVISION_FILES = [e for e in ALL_FILES if e.get("source") == "torchvision"]
FILES = [e for e in ALL_FILES if e.get("source", "keras") == "keras"]
#: Models whose reference is tf.keras (RegNet, ResNet-RS: Keras 3 dropped them); tests/test_tf_keras_families.py
#: cross-checks their files against tf_keras. Sections 2, 3 and 6 check the others against keras.
TF_KERAS_MODELS = {k for k, v in MODELS.items() if v.get("keras_package") == "tf_keras"}
IMAGENET_MODELS = {k: v for k, v in MODELS.items()
                   if v.get("imagenet") and k not in TF_KERAS_MODELS and k not in CHECKPOINT_MODELS}
KERAS_FILES = [e for e in FILES if e["model"] not in TF_KERAS_MODELS]


def _keras_module(module):
    return importlib.import_module(f"keras.src.applications.{module}")


def _module_closure(module):
    """The keras.src.applications module plus the ones it imports from there
    (resnet_v2 builds on resnet), excluding the shared imagenet_utils."""
    mod = _keras_module(module)
    found = [mod]
    for node in ast.walk(ast.parse(inspect.getsource(mod))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "keras.src.applications"
        ):
            for alias in node.names:
                if alias.name != "imagenet_utils":
                    found.append(_keras_module(alias.name))
    return found


def _source(module):
    """Source text of the module closure, with implicitly concatenated string
    literals that are split over lines joined (``"ab"\\n  "cd"`` -> ``"abcd"``)."""
    text = "\n".join(inspect.getsource(m) for m in _module_closure(module))
    return re.sub(r'"\s*\n\s*f?"', "", text)


def _string_constants(module):
    """Module-level string constants of the module closure (base URLs etc.)."""
    return [
        value
        for m in _module_closure(module)
        for value in vars(m).values()
        if isinstance(value, str)
    ]


def _function_source(entry):
    return inspect.getsource(getattr(keras.applications, entry["keras_function"]))


def _weights_name(entry):
    """The ``weights_name=...`` a model function passes to its family builder."""
    found = re.findall(r'weights_name="([^"]+)"', _function_source(entry))
    assert len(found) == 1, (entry["keras_function"], found)
    return found[0]


def _literal_get_file_calls(module):
    """(file, url, hash) of every keras ``get_file`` call in the module whose
    file name is a string literal (directly, or via a local ``fname = "..."``)."""
    mod = _keras_module(module)
    tree = ast.parse(inspect.getsource(mod))
    assigns = [
        (n.lineno, n.targets[0].id, n.value.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        and len(n.targets) == 1
        and isinstance(n.targets[0], ast.Name)
        and isinstance(n.value, ast.Constant)
        and isinstance(n.value.value, str)
    ]

    def resolve(node, lineno):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            local = [v for ln, name, v in assigns if name == node.id and ln < lineno]
            if local:
                return local[-1]
            return getattr(mod, node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return resolve(node.left, lineno) + resolve(node.right, lineno)
        raise ValueError(ast.dump(node))

    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_file"
        ):
            try:
                fname = resolve(node.args[0], node.lineno)
            except (ValueError, AttributeError):
                continue  # a computed name: handled by the template rules
            if not isinstance(fname, str):
                continue
            url = resolve(node.args[1], node.lineno)
            kw = {k.arg: k.value for k in node.keywords}
            file_hash = kw["file_hash"].value if "file_hash" in kw else None
            calls.append((fname, url, file_hash))
    return calls


def _shared_dir():
    env = os.environ.get("KAPPS_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared"


def _variant_tuple(entry):
    return tuple(entry["variant"].values())


# --------------------------------------------------------------------------
# 1. schema


def test_top_level_schema():
    assert set(MANIFEST) == {"schema_version", "about", "models", "files"}
    assert MANIFEST["schema_version"] == 1
    assert isinstance(MANIFEST["about"], str) and len(MANIFEST["about"]) > 200
    for word in ("sha256", "md5", "keras.applications"):
        assert word in MANIFEST["about"], word
    assert isinstance(MODELS, dict) and isinstance(FILES, list)


def test_registry_names_are_exactly_the_agreed_ones():
    assert set(MODELS) == REGISTRY_NAMES
    assert list(MODELS) == sorted(MODELS), "models must be sorted by name"


def test_model_entries_have_schema_keys_and_types():
    for name, m in MODELS.items():
        if name in CHECKPOINT_MODELS:
            continue  # section 7
        extra = set(m) - MODEL_KEYS
        assert MODEL_KEYS <= set(m), (name, m)
        assert extra <= {"note", "keras_package"}, (name, extra)
        assert m.get("keras_package", "tf_keras") == "tf_keras", name
        assert isinstance(m["imagenet"], bool), name
        assert isinstance(m["variant_keys"], list), name
        assert all(k in VARIANT_TYPES for k in m["variant_keys"]), name
        if m["imagenet"]:
            assert isinstance(m["keras_function"], str), name
            assert isinstance(m["keras_module"], str), name
        else:
            assert m["keras_function"] is None and m["keras_module"] is None
            assert isinstance(m.get("note"), str) and m["note"], name


def test_file_entries_have_schema_keys_and_types():
    for e in FILES:
        assert set(e) == FILE_KEYS | ({"eval_transform"} if e["include_top"] else set()), e
        assert isinstance(e["file"], str) and e["file"].endswith(".h5"), e
        assert "/" not in e["file"], e
        assert isinstance(e["include_top"], bool), e
        assert isinstance(e["variant"], dict), e
        assert isinstance(e["url"], str), e
        assert e["url"].startswith("https://storage.googleapis.com/"), e
        assert e["size"] is None or (
            type(e["size"]) is int and e["size"] > 0
        ), e
        if e["hash"] is None:
            assert e["hash_source"] is None, e
        else:
            assert set(e["hash"]) == {"algorithm", "value"}, e
            value = e["hash"]["value"]
            assert re.fullmatch(r"[0-9a-f]+", value), e
            # keras.utils.get_file: sha256 for 64 hex digits, md5 otherwise.
            expected_alg = "sha256" if len(value) == 64 else "md5"
            assert e["hash"]["algorithm"] == expected_alg, e
            assert len(value) in (32, 64), e
            assert isinstance(e["hash_source"], str) and e["hash_source"], e
            if e["model"] in TF_KERAS_MODELS:
                assert TF_KERAS_HASH_SOURCE.match(e["hash_source"]), e["hash_source"]
            else:
                assert (
                    KERAS_HASH_SOURCE.match(e["hash_source"])
                    or e["hash_source"] == PROVENANCE_SOURCE
                ), e["hash_source"]


def test_every_file_belongs_to_an_imagenet_model_with_matching_variant_keys():
    for e in FILES:
        assert e["model"] in MODELS, e
        model = MODELS[e["model"]]
        assert model["imagenet"], e
        assert list(e["variant"]) == model["variant_keys"], e
        for key, value in e["variant"].items():
            # bool is a subclass of int: compare exact types.
            assert type(value) is VARIANT_TYPES[key], (e["file"], key, value)


def test_file_names_urls_and_keys_are_unique():
    names = [e["file"] for e in ALL_FILES]
    assert len(names) == len(set(names))
    urls = [e["url"] for e in ALL_FILES]
    assert len(urls) == len(set(urls))
    keys = [(e["model"], e["include_top"], _variant_tuple(e)) for e in ALL_FILES]
    assert len(keys) == len(set(keys))


def test_files_are_sorted_by_model_include_top_variant():
    keys = [(e["model"], e["include_top"], _variant_tuple(e)) for e in ALL_FILES]
    assert keys == sorted(keys)


def test_include_top_matches_the_file_name():
    for e in FILES:
        no_top = "notop" in e["file"] or "no_top" in e["file"]
        assert no_top == (not e["include_top"]), e["file"]


# --------------------------------------------------------------------------
# 2. coverage of keras.applications


def _keras_functions():
    return sorted(
        name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )


def test_every_keras_application_function_has_top_and_no_top_files():
    functions = _keras_functions()
    assert len(functions) == 40, functions
    by_function = {m["keras_function"]: name for name, m in IMAGENET_MODELS.items()}
    assert len(by_function) == len(IMAGENET_MODELS), "keras_function not unique"
    assert set(by_function) == set(functions)
    for fn in functions:
        tops = {e["include_top"] for e in FILES if e["model"] == by_function[fn]}
        assert tops == {True, False}, fn


def test_keras_module_defines_the_keras_function():
    """keras_module names the keras.src.applications module that defines the
    function (the public keras.applications.mobilenet_v3 does not re-export
    MobileNetV3Small/Large), and every model function it defines is listed."""
    listed = {m["keras_function"] for m in IMAGENET_MODELS.values()}
    for name, m in IMAGENET_MODELS.items():
        fn = getattr(_keras_module(m["keras_module"]), m["keras_function"])
        assert fn is getattr(keras.applications, m["keras_function"]), name
    for module in {m["keras_module"] for m in IMAGENET_MODELS.values()}:
        for attr, obj in vars(_keras_module(module)).items():
            if getattr(keras.applications, attr, None) is obj and callable(obj):
                assert attr in listed, (module, attr)


def test_registry_name_matches_the_file_names():
    # e.g. efficientnet_v2_b0 ~ efficientnetv2-b0.h5, mobilenet_v3_small ~
    # weights_mobilenet_v3_small_..., resnet50_v2 ~ resnet50v2_weights_...
    for e in FILES:
        squashed = re.sub(r"[_-]", "", e["file"])
        assert e["model"].replace("_", "") in squashed, e["file"]


# --------------------------------------------------------------------------
# 3. cross-check with the keras source text


def _module_of(entry_file):
    return MODELS[entry_file["model"]]["keras_module"]


def test_keras_hashes_appear_in_the_named_keras_module():
    checked = 0
    for e in KERAS_FILES:
        if e["hash"] is None:
            continue
        m = KERAS_HASH_SOURCE.match(e["hash_source"])
        if not m:
            continue
        module = m.group(1)
        assert module in {x.__name__.rsplit(".", 1)[1] for x in _module_closure(_module_of(e))}
        src = inspect.getsource(_keras_module(module))
        assert f'"{e["hash"]["value"]}"' in src, (e["file"], module)
        where = e["hash_source"].split(" ", 1)[1]
        if where.startswith("WEIGHTS_HASHES"):
            assert "WEIGHTS_HASHES = {" in src, e["hash_source"]
        checked += 1
    assert checked >= 60


def test_every_keras_hash_is_in_the_manifest():
    """No file with a published hash was forgotten: the only hashes in the keras
    source that the manifest lacks are the ResNeXt ones (keras ships hashes but
    no ResNeXt model function) and the ImageNet class index (not a weight file)."""
    in_manifest = {e["hash"]["value"] for e in KERAS_FILES if e["hash"]}
    in_source = set()
    for module in {m["keras_module"] for m in IMAGENET_MODELS.values()}:
        in_source |= set(
            re.findall(r'"([0-9a-f]{32}|[0-9a-f]{64})"', _source(module))
        )
    resnet = _keras_module("resnet")
    resnext = set(resnet.WEIGHTS_HASHES["resnext50"]) | set(
        resnet.WEIGHTS_HASHES["resnext101"]
    )
    assert in_source - in_manifest == resnext
    # Hashes not from keras: only the one measured on the shared file.
    assert {
        e["file"] for e in KERAS_FILES if e["hash"] and e["hash"]["value"] not in in_source
    } == {KNOWN_FILE}


def test_weights_hashes_pairing():
    """Hash by (model, include_top) equals WEIGHTS_HASHES[key][0 top / 1 no top]."""
    checked = 0
    for e in KERAS_FILES:
        if not e["hash_source"] or "WEIGHTS_HASHES" not in e["hash_source"]:
            continue
        model = MODELS[e["model"]]
        module = KERAS_HASH_SOURCE.match(e["hash_source"]).group(1)
        table = _keras_module(module).WEIGHTS_HASHES
        if model["keras_module"] == "mobilenet_v3":
            fn_src = _function_source(model)
            model_type = model["keras_function"][len("MobileNetV3"):].lower()
            assert f'"{model_type}"' in fn_src
            key = "{}{}_224_{}_float".format(
                model_type,
                "_minimalistic" if e["variant"]["minimalistic"] else "",
                str(e["variant"]["alpha"]),
            )
        else:
            key = _weights_name(model)
        assert table[key][0 if e["include_top"] else 1] == e["hash"]["value"], e
        checked += 1
    assert checked == 10 + 16 + 14 + 12 + 12


def test_url_directory_appears_in_the_keras_source():
    for e in KERAS_FILES:
        module = _module_of(e)
        directory = e["url"].rsplit("/", 1)[0] + "/"
        assert directory in _source(module), (e["file"], directory)
        # The URL is a module constant, or a base-URL constant + the file name.
        constants = _string_constants(module)
        assert e["url"] in constants or any(
            c.endswith("/") and e["url"] == c + e["file"] for c in constants
        ), e["url"]


def test_url_basename_is_the_file_name_except_nasnet():
    for e in FILES:
        basename = e["url"].rsplit("/", 1)[1]
        if MODELS[e["model"]]["keras_module"] == "nasnet":
            assert basename != e["file"]
        else:
            assert basename == e["file"], e


LITERAL_MODULES = {
    "densenet",
    "inception_resnet_v2",
    "inception_v3",
    "nasnet",
    "vgg16",
    "vgg19",
    "xception",
}


def test_literal_file_names_urls_and_hashes_come_from_get_file_calls():
    """For families whose get_file calls name the file literally, every manifest
    entry is exactly one of those calls: (file, url, hash)."""
    checked = 0
    for module in LITERAL_MODULES:
        calls = set(_literal_get_file_calls(module))
        entries = {
            (e["file"], e["url"], e["hash"]["value"] if e["hash"] else None)
            for e in FILES
            if _module_of(e) == module
        }
        assert entries == calls, module
        checked += len(entries)
    assert checked == 6 + 2 + 2 + 4 + 2 + 2 + 2


def _expected_file_name(e, src):
    """Re-derive the file name of a templated family from the keras source."""
    model = MODELS[e["model"]]
    module = model["keras_module"]
    top = e["include_top"]
    v = e["variant"]
    if module in ("convnext", "efficientnet", "efficientnet_v2"):
        assert "file_name = name + file_suffix" in src
        suffix = ".h5" if top else "_notop.h5"
        assert f'file_suffix = "{suffix}"' in src
        fn = getattr(keras.applications, model["keras_function"])
        return inspect.signature(fn).parameters["name"].default + suffix
    if module in ("resnet", "resnet_v2"):
        suffix = ".h5" if top else "_notop.h5"
        template = "{weights_name}_weights_tf_dim_ordering_tf_kernels" + suffix
        assert f'f"{template}"' in src
        return template.replace("{weights_name}", _weights_name(model))
    if module == "mobilenet":
        template = "mobilenet_%s_%d_tf.h5" if top else "mobilenet_%s_%d_tf_no_top.h5"
        assert f'model_name = "{template}" % (alpha_text, rows)' in src
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[v["alpha"]]
        assert f'alpha_text = "{alpha_text}"' in src
        return template % (alpha_text, v["resolution"])
    if module == "mobilenet_v2":
        templates = re.findall(r'"(mobilenet_v2_weights_[^"]*\.h5)"', src)
        (template,) = [t for t in templates if t.endswith("_no_top.h5") != top]
        return template.replace("{float(alpha)}", str(float(v["alpha"]))).replace(
            "{rows}", str(v["resolution"])
        )
    if module == "mobilenet_v3":
        assert 'model_name = "{}{}_224_{}_float".format(' in src
        model_type = model["keras_function"][len("MobileNetV3"):].lower()
        model_name = "{}{}_224_{}_float".format(
            model_type,
            "_minimalistic" if v["minimalistic"] else "",
            str(v["alpha"]),
        )
        templates = re.findall(r'f"(weights_mobilenet_v3_[^"]*\.h5)"', src)
        (template,) = [t for t in templates if ("_no_top" in t) != top]
        return template.replace("{model_name}", model_name)
    raise AssertionError(f"no rule for module {module}")


def test_templated_file_names_are_derivable_from_the_keras_source():
    checked = 0
    for e in KERAS_FILES:
        module = _module_of(e)
        if module in LITERAL_MODULES:
            continue
        assert e["file"] == _expected_file_name(e, _source(module)), e
        checked += 1
    assert checked == len(KERAS_FILES) - 20


# --------------------------------------------------------------------------
# 4. known combinations and the genuine shared file


def _variants(model, include_top):
    return [
        _variant_tuple(e)
        for e in FILES
        if e["model"] == model and e["include_top"] == include_top
    ]


@pytest.mark.parametrize("include_top", [True, False])
def test_mobilenet_v2_variants_are_the_released_checkpoints(include_top):
    variants = _variants("mobilenet_v2", include_top)
    assert len(variants) == 22
    expected = {
        (a, r) for a in (0.35, 0.5, 0.75, 1.0) for r in (96, 128, 160, 192, 224)
    } | {(1.3, 224), (1.4, 224)}
    assert set(variants) == expected
    assert (1.4, 96) not in variants
    assert not any(a in (1.3, 1.4) and r != 224 for a, r in variants)


def test_mobilenet_v2_url_uses_keras_float_formatting():
    names = {e["file"] for e in FILES if e["model"] == "mobilenet_v2"}
    for alpha in ("0.35", "0.5", "0.75", "1.0", "1.3", "1.4"):
        assert f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224.h5" in names
        assert (
            f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5"
            in names
        )
    assert not any("_0.50_" in n or "_1_" in n for n in names)


@pytest.mark.parametrize("include_top", [True, False])
def test_mobilenet_variants(include_top):
    variants = _variants("mobilenet", include_top)
    assert len(variants) == 16
    assert set(variants) == {
        (a, r) for a in (0.25, 0.5, 0.75, 1.0) for r in (128, 160, 192, 224)
    }


@pytest.mark.parametrize("model", ["mobilenet_v3_small", "mobilenet_v3_large"])
@pytest.mark.parametrize("include_top", [True, False])
def test_mobilenet_v3_variants(model, include_top):
    # keras only accepts alpha 1.0 for the minimalistic models.
    assert set(_variants(model, include_top)) == {
        (0.75, False),
        (1.0, False),
        (1.0, True),
    }


def test_other_families_have_exactly_one_top_and_one_no_top_file():
    for name, m in IMAGENET_MODELS.items():
        if m["variant_keys"]:
            continue
        entries = [e for e in FILES if e["model"] == name]
        assert sorted(e["include_top"] for e in entries) == [False, True], name
        assert all(e["variant"] == {} for e in entries), name


def test_known_mobilenet_file_entry():
    (entry,) = [e for e in FILES if e["file"] == KNOWN_FILE]
    assert entry["model"] == "mobilenet"
    assert entry["include_top"] is False
    assert entry["variant"] == {"alpha": 0.25, "resolution": 224}
    assert entry["size"] == KNOWN_SIZE
    assert entry["hash"] == {"algorithm": "sha256", "value": KNOWN_SHA256}
    assert entry["hash_source"] == PROVENANCE_SOURCE
    assert entry["url"] == (
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
        + KNOWN_FILE
    )


def test_mobilenet_v1_v2_have_no_other_hash():
    # keras publishes no hash for MobileNet v1/v2 weight files.
    for e in FILES:
        if e["model"] in ("mobilenet", "mobilenet_v2") and e["file"] != KNOWN_FILE:
            assert e["hash"] is None and e["hash_source"] is None, e["file"]
            assert e["size"] is None, e["file"]


def test_hash_and_size_match_the_genuine_shared_file():
    folder = _shared_dir() / "weights"
    path = folder / KNOWN_FILE
    assert folder.is_dir(), (
        f"shared weights folder {folder} is missing: set KAPPS_SHARED_DIR to the "
        f"'shared' folder (it holds weights/{KNOWN_FILE})"
    )
    assert path.is_file(), f"{path} is missing from the shared weights folder"
    (entry,) = [e for e in FILES if e["file"] == KNOWN_FILE]
    data = path.read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["hash"]["value"]
    for e in FILES:
        candidate = folder / e["file"]
        if candidate.is_file() and e["hash"]:
            digest = hashlib.new(e["hash"]["algorithm"], candidate.read_bytes())
            assert digest.hexdigest() == e["hash"]["value"], e["file"]


# --------------------------------------------------------------------------
# 5. classics without ImageNet weights


@pytest.mark.parametrize("name", CLASSICS)
def test_classics_have_no_imagenet_files(name):
    """The papers' networks have no ImageNet weights; AlexNet's and GoogLeNet's torchvision variants have
    torchvision's checkpoint, and nothing else (section 7)."""
    m = MODELS[name]
    assert m["keras_module"] is None
    assert re.search(r"\b(19|20)\d\d\b", m["note"]), "note must cite the paper"
    assert "weights=None" in m["note"]
    assert not [e for e in FILES if e["model"] == name]
    if name in TORCHVISION_CLASSICS:
        assert m["imagenet"] is True and m["variant_keys"] == ["variant"]
        assert [e["variant"] for e in TORCHVISION_FILES if e["model"] == name] == [{"variant": "torchvision"}]
        assert "variant='paper'" in m["note"] and "variant='torchvision'" in m["note"]
    else:
        assert m["imagenet"] is False and m["keras_function"] is None and m["variant_keys"] == []


def test_only_classics_lack_imagenet_weights():  # torchvision's models have their checkpoints
    assert {k for k, m in MODELS.items() if not m["imagenet"]} == set(CLASSICS) - set(TORCHVISION_CLASSICS) | set(NO_WEIGHTS)


# --------------------------------------------------------------------------
# 6. what keras.applications actually requests from get_file

# Cheap representatives of every keras module and of the tricky variants.
CAPTURE_SUBSET = {
    "mobilenet_2_5_128_tf.h5",
    KNOWN_FILE,
    "mobilenet_5_0_160_tf_no_top.h5",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_160_no_top.h5",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.3_224.h5",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_224_no_top.h5",
    "weights_mobilenet_v3_small_224_0.75_float.h5",
    "weights_mobilenet_v3_small_minimalistic_224_1.0_float_no_top_v2.h5",
    "weights_mobilenet_v3_large_minimalistic_224_1.0_float.h5",
    "convnext_tiny_notop.h5",
    "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb0_notop.h5",
    "efficientnetv2-b0.h5",
    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    "nasnet_mobile_no_top.h5",
    "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "xception_weights_tf_dim_ordering_tf_kernels.h5",
}
FULL_CAPTURE = os.environ.get("KAPPS_MANIFEST_FULL_CAPTURE") == "1"
CAPTURED = [e for e in FILES if FULL_CAPTURE or e["file"] in CAPTURE_SUBSET]


class _Captured(Exception):
    pass


def test_capture_subset_is_in_the_manifest():
    assert CAPTURE_SUBSET <= {e["file"] for e in FILES}


@pytest.mark.parametrize("entry", CAPTURED, ids=[e["file"] for e in CAPTURED])
def test_keras_requests_exactly_this_file(entry, monkeypatch):
    from keras.src.utils import file_utils

    requested = []

    def fake_get_file(fname, origin=None, **kwargs):
        requested.append((fname, origin, kwargs.get("file_hash")))
        raise _Captured

    monkeypatch.setattr(file_utils, "get_file", fake_get_file)
    model = MODELS[entry["model"]]
    kwargs = {"include_top": entry["include_top"], "weights": "imagenet"}
    v = entry["variant"]
    if "alpha" in v:
        kwargs["alpha"] = v["alpha"]
    if "resolution" in v:
        kwargs["input_shape"] = (v["resolution"], v["resolution"], 3)
    if model["keras_module"] == "mobilenet_v3":
        kwargs["input_shape"] = (224, 224, 3)  # its only weight size
    if "minimalistic" in v:
        kwargs["minimalistic"] = v["minimalistic"]
    with pytest.raises(_Captured):
        getattr(keras.applications, model["keras_function"])(**kwargs)
    keras.backend.clear_session()
    fname, url, file_hash = requested[-1]
    assert fname == entry["file"]
    assert url == entry["url"]
    if entry["hash_source"] and entry["hash_source"].startswith("keras."):
        assert file_hash == entry["hash"]["value"]
    else:
        assert file_hash is None


# --------------------------------------------------------------------------
# 7. torchvision's checkpoints (their facts: tests/test_torchvision_families.py, against torchvision)

TORCHVISION_MODEL_KEYS = MODEL_KEYS | {"source", "torchvision_function"}
TORCHVISION_FILE_KEYS = FILE_KEYS | {"source", "weights_enum", "accuracy", "eval_transform"}


def test_torchvision_models_and_files_have_their_schema():
    assert TORCHVISION_MODELS == {"resnet18", "resnet34", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x0_5",
                                  "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
                                  "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "swin_t", "swin_s", "swin_b",
                                  *TORCHVISION_CLASSICS}
    for name in TORCHVISION_MODELS:
        m = MODELS[name]
        classic = name in TORCHVISION_CLASSICS  # AlexNet, GoogLeNet: the checkpoint is their torchvision variant's
        assert set(m) == TORCHVISION_MODEL_KEYS | ({"note"} if classic else set()), (name, m)
        assert m["imagenet"] is True and m["keras_module"] is None, name
        assert m["variant_keys"] == (["variant"] if classic else []), name
        assert isinstance(m["keras_function"], str) and isinstance(m["torchvision_function"], str), name
        (entry,) = [e for e in ALL_FILES if e["model"] == name]  # one checkpoint serves both tops
        assert entry in TORCHVISION_FILES
    for e in TORCHVISION_FILES:
        classic = e["model"] in TORCHVISION_CLASSICS
        googlenet = e["model"] == "googlenet"  # its checkpoint holds untrained auxiliary heads, left out
        assert set(e) == TORCHVISION_FILE_KEYS | ({"ignored_key_prefixes"} if googlenet else set()), e
        assert e.get("ignored_key_prefixes", ["aux1.", "aux2."]) == ["aux1.", "aux2."], e
        assert e["variant"] == ({"variant": "torchvision"} if classic else {}), e
        assert e["include_top"] is True and e["size"] is None, e
        assert e["url"] == "https://download.pytorch.org/models/" + e["file"] and e["file"].endswith(".pth"), e
        # the hash is the hex run torchvision's loader reads from the file name (torch.hub's r"-([a-f0-9]*)\.")
        assert e["hash"] == {"algorithm": "sha256-prefix",
                             "value": re.search(r"-([a-f0-9]*)\.", e["file"]).group(1)}, e
        assert len(e["hash"]["value"]) >= 8, e
        assert e["hash_source"].startswith(f"torchvision.models.{e['weights_enum']} "), e
        assert set(e["accuracy"]) == {"acc@1", "acc@5"}, e
        transform = e["eval_transform"]
        # GoogLeNet's model (transform_input=True) turns torch-normalized input into "tf"'s [-1, 1]
        assert transform["preprocessing"] == ("tf" if googlenet else "torch"), e
        assert transform["interpolation"] == ("bicubic" if e["model"].startswith("swin") else "bilinear"), e
        assert transform["crop_pct"] == transform["size"][0] / transform["resize_size"], e
        assert transform["mean"] == [0.485, 0.456, 0.406] and transform["std"] == [0.229, 0.224, 0.225], e

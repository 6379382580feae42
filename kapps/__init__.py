"""kapps: the keras.applications model zoo, rebuilt on shared blocks, and more.

>>> import kapps
>>> model = kapps.MobileNetV2(weights=None)           # same layers as keras.applications
>>> seq = kapps.MobileNetV2(weights=None, builder="sequential")  # a Sequential of blocks
>>> "mobilenet_v2" in kapps.list_models()
True
>>> from kapps.mobilenet_v2 import preprocess_input   # keras.applications' module paths
>>> kapps.mobilenet_v2 is kapps.models.mobilenet_v2
True

The public names are listed once, explicitly, in three places that a test keeps equal:
the ``TYPE_CHECKING`` imports (what IDEs and type checkers read), ``_LAZY`` (what runs)
and ``__all__``. ``import kapps`` imports neither Keras nor TensorFlow: a name is imported
on first use (PEP 562 ``__getattr__``), and the first use of any of them imports
:mod:`kapps.models` first, so that the registry holds every family.

Family modules (``kapps.mobilenet_v2``, ...) live in :mod:`kapps.models`; ``_FAMILIES``
maps keras.applications' module names onto them. ``kapps.<family>`` resolves through
``__getattr__``; ``import kapps.<family>`` through ``_FamilyAliasFinder``, a finder that
answers only for the names in ``_FAMILIES`` and hands back the module itself. This keeps one
module object per family (``kapps.resnet is kapps.models.resnet``, so its tables such as
``kapps.resnet.DEPTHS`` stay reachable) without 21 copy modules at the top level and
without writing ``sys.modules`` when kapps is imported (the import system records the
alias only when someone imports it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kapps.errors import (
    BackendError,
    CheckpointError,
    DownloadError,
    KappsError,
    WeightsIntegrityError,
    WeightsMismatchError,
    WeightsNotFoundError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names as _LAZY and _FAMILIES, for IDEs and type checkers
    from kapps import blocks, finetune, images, segmentation, weights
    from kapps.finetune import evaluate, fine_tune
    from kapps.imagenet import decode_predictions, preprocess_input
    from kapps.models import (
        alexnet, convnext, densenet, efficientnet, efficientnet_v2, googlenet, inception_resnet_v1,
        inception_resnet_v2, inception_v3, inception_v4, lenet, mobilenet, mobilenet_v2, mobilenet_v3, nasnet, regnet, resnet, resnet50, resnet_basic,
        resnet_rs, resnet_v2, shufflenet_v2, squeezenet, swin_transformer, vgg16, vgg19, vision_transformer, xception,
    )
    from kapps.models.alexnet import AlexNet
    from kapps.models.convnext import ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall, ConvNeXtTiny, ConvNeXtXLarge
    from kapps.models.densenet import DenseNet121, DenseNet169, DenseNet201
    from kapps.models.efficientnet import (
        EfficientNetB0, EfficientNetB1, EfficientNetB2, EfficientNetB3, EfficientNetB4, EfficientNetB5,
        EfficientNetB6, EfficientNetB7,
    )
    from kapps.models.efficientnet_v2 import (
        EfficientNetV2B0, EfficientNetV2B1, EfficientNetV2B2, EfficientNetV2B3, EfficientNetV2L, EfficientNetV2M,
        EfficientNetV2S,
    )
    from kapps.models.googlenet import GoogLeNet
    from kapps.models.inception_resnet_v1 import InceptionResNetV1
    from kapps.models.inception_resnet_v2 import InceptionResNetV2
    from kapps.models.inception_v3 import InceptionV3
    from kapps.models.inception_v4 import InceptionV4
    from kapps.models.lenet import LeNet5
    from kapps.models.mobilenet import MobileNet
    from kapps.models.mobilenet_v2 import MobileNetV2
    from kapps.models.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
    from kapps.models.nasnet import NASNetLarge, NASNetMobile
    from kapps.models.regnet import (
        RegNetX002, RegNetX004, RegNetX006, RegNetX008, RegNetX016, RegNetX032, RegNetX040, RegNetX064, RegNetX080,
        RegNetX120, RegNetX160, RegNetX320, RegNetY002, RegNetY004, RegNetY006, RegNetY008, RegNetY016, RegNetY032,
        RegNetY040, RegNetY064, RegNetY080, RegNetY120, RegNetY160, RegNetY320,
    )
    from kapps.models.resnet import ResNet50, ResNet101, ResNet152
    from kapps.models.resnet_basic import ResNet18, ResNet34
    from kapps.models.resnet_rs import (
        ResNetRS50, ResNetRS101, ResNetRS152, ResNetRS200, ResNetRS270, ResNetRS350, ResNetRS420,
    )
    from kapps.models.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
    from kapps.models.shufflenet_v2 import ShuffleNetV2X0_5, ShuffleNetV2X1_0, ShuffleNetV2X1_5, ShuffleNetV2X2_0
    from kapps.models.squeezenet import SqueezeNet1_0, SqueezeNet1_1
    from kapps.models.swin_transformer import SwinB, SwinS, SwinT
    from kapps.models.vgg16 import VGG16
    from kapps.models.vgg19 import VGG19
    from kapps.models.vision_transformer import ViTB16, ViTB32, ViTL16, ViTL32
    from kapps.models.xception import Xception
    from kapps.features import features_of
    from kapps.registry import get_model, list_models, model_info
    from kapps.tools.convert import convert
    from kapps.tools.export import export
    from kapps.tools.runtimes import compile
    from kapps.tools.accuracy import validate
    from kapps.tools.optimize import optimize_for_inference
    from kapps.transforms import eval_transform

#: keras.applications' module names -> the kapps family modules.
_FAMILIES: dict[str, str] = {
    name: f"kapps.models.{name}"
    for name in (
        "alexnet", "convnext", "densenet", "efficientnet", "efficientnet_v2", "googlenet", "inception_resnet_v1",
        "inception_resnet_v2", "inception_v3", "inception_v4", "lenet", "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "regnet",
        "resnet", "resnet50",
        "resnet_basic", "resnet_rs", "resnet_v2", "shufflenet_v2", "squeezenet", "swin_transformer", "vgg16", "vgg19",
        "vision_transformer", "xception",
    )
}

#: Public constructors -> the family module defining them (one per registered model).
_CONSTRUCTORS: dict[str, str] = {
    "AlexNet": "alexnet",
    "ConvNeXtTiny": "convnext", "ConvNeXtSmall": "convnext", "ConvNeXtBase": "convnext",
    "ConvNeXtLarge": "convnext", "ConvNeXtXLarge": "convnext",
    "DenseNet121": "densenet", "DenseNet169": "densenet", "DenseNet201": "densenet",
    "EfficientNetB0": "efficientnet", "EfficientNetB1": "efficientnet", "EfficientNetB2": "efficientnet",
    "EfficientNetB3": "efficientnet", "EfficientNetB4": "efficientnet", "EfficientNetB5": "efficientnet",
    "EfficientNetB6": "efficientnet", "EfficientNetB7": "efficientnet",
    "EfficientNetV2B0": "efficientnet_v2", "EfficientNetV2B1": "efficientnet_v2", "EfficientNetV2B2": "efficientnet_v2",
    "EfficientNetV2B3": "efficientnet_v2", "EfficientNetV2S": "efficientnet_v2", "EfficientNetV2M": "efficientnet_v2",
    "EfficientNetV2L": "efficientnet_v2",
    "GoogLeNet": "googlenet",
    "InceptionResNetV1": "inception_resnet_v1",
    "InceptionResNetV2": "inception_resnet_v2",
    "InceptionV3": "inception_v3",
    "InceptionV4": "inception_v4",
    "LeNet5": "lenet",
    "MobileNet": "mobilenet",
    "MobileNetV2": "mobilenet_v2",
    "MobileNetV3Small": "mobilenet_v3", "MobileNetV3Large": "mobilenet_v3",
    "NASNetMobile": "nasnet", "NASNetLarge": "nasnet",
    "RegNetX002": "regnet", "RegNetX004": "regnet", "RegNetX006": "regnet", "RegNetX008": "regnet",
    "RegNetX016": "regnet", "RegNetX032": "regnet", "RegNetX040": "regnet", "RegNetX064": "regnet",
    "RegNetX080": "regnet", "RegNetX120": "regnet", "RegNetX160": "regnet", "RegNetX320": "regnet",
    "RegNetY002": "regnet", "RegNetY004": "regnet", "RegNetY006": "regnet", "RegNetY008": "regnet",
    "RegNetY016": "regnet", "RegNetY032": "regnet", "RegNetY040": "regnet", "RegNetY064": "regnet",
    "RegNetY080": "regnet", "RegNetY120": "regnet", "RegNetY160": "regnet", "RegNetY320": "regnet",
    "ResNet50": "resnet", "ResNet101": "resnet", "ResNet152": "resnet",
    "ResNet18": "resnet_basic", "ResNet34": "resnet_basic",
    "ResNetRS50": "resnet_rs", "ResNetRS101": "resnet_rs", "ResNetRS152": "resnet_rs", "ResNetRS200": "resnet_rs",
    "ResNetRS270": "resnet_rs", "ResNetRS350": "resnet_rs", "ResNetRS420": "resnet_rs",
    "ResNet50V2": "resnet_v2", "ResNet101V2": "resnet_v2", "ResNet152V2": "resnet_v2",
    "ShuffleNetV2X0_5": "shufflenet_v2", "ShuffleNetV2X1_0": "shufflenet_v2", "ShuffleNetV2X1_5": "shufflenet_v2",
    "ShuffleNetV2X2_0": "shufflenet_v2",
    "SqueezeNet1_0": "squeezenet", "SqueezeNet1_1": "squeezenet",
    "SwinT": "swin_transformer", "SwinS": "swin_transformer", "SwinB": "swin_transformer",
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "ViTB16": "vision_transformer", "ViTB32": "vision_transformer", "ViTL16": "vision_transformer",
    "ViTL32": "vision_transformer",
    "Xception": "xception",
}

#: Every lazily imported public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "blocks": "kapps.blocks", "finetune": "kapps.finetune", "images": "kapps.images", "weights": "kapps.weights",
    "segmentation": "kapps.segmentation", "compile": "kapps.tools.runtimes",
    "list_models": "kapps.registry", "get_model": "kapps.registry", "model_info": "kapps.registry",
    "features_of": "kapps.features",
    "preprocess_input": "kapps.imagenet", "decode_predictions": "kapps.imagenet",
    "fine_tune": "kapps.finetune", "evaluate": "kapps.finetune",
    "optimize_for_inference": "kapps.tools.optimize", "export": "kapps.tools.export", "convert": "kapps.tools.convert",
    "eval_transform": "kapps.transforms", "validate": "kapps.tools.accuracy",
    **{name: _FAMILIES[family] for name, family in _CONSTRUCTORS.items()},
}

__all__ = [
    "KappsError", "WeightsNotFoundError", "WeightsIntegrityError", "WeightsMismatchError",
    "DownloadError", "BackendError", "CheckpointError", *_LAZY, *_FAMILIES,
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); the family registry comes first."""
    if name in _FAMILIES:
        return importlib.import_module(_FAMILIES[name])
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module("kapps.models")  # registers every family before the registry is used
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _FamilyAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import kapps.mobilenet_v2`` -> the module :mod:`kapps.models.mobilenet_v2` itself.

    Consulted last (after the regular finders) and only for the names in ``_FAMILIES``.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, family = fullname.partition(".")
        if package != __name__ or family not in _FAMILIES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(_FAMILIES[spec.name.partition(".")[2]])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just stamped the alias spec on the module: give it back its own.
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(finder, _FamilyAliasFinder) for finder in sys.meta_path):
    sys.meta_path.append(_FamilyAliasFinder())


# -- kapps' layers are known to Keras as soon as Keras is -------------------------------------
def _register_layers() -> None:
    """Import the modules that register kapps' layers and model class, so ``keras.saving.load_model``
    finds them."""
    importlib.import_module("kapps.blocks")  # every layer kapps puts into a model lives there
    # BlockSequential, the Sequential builder's model; importing it raises the recursion limit, as
    # ResNetRS270-420 build and reload only above Python's default. Only module imports here: the
    # first ``import keras`` may come from a kapps module still being imported (``import
    # kapps.builders``), which finishes its own registration (tests/test_imports.py).
    importlib.import_module("kapps.builders")


class _RegisterOnKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs :func:`_register_layers` right after the first ``import keras``, then steps aside.

    ``import kapps`` stays free of Keras (``kapps --help`` answers in a second), yet
    ``import kapps; keras.saving.load_model("m.keras")`` finds every kapps layer, in that
    order or the other.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return None
        self._keras_loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._keras_loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = self._keras_loader
        self._keras_loader.exec_module(module)
        _register_layers()


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(finder, _RegisterOnKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnKerasImport())

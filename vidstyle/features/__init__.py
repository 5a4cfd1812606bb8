"""VGG-19 feature extraction and the weight sources it can load."""

from vidstyle.features.vgg import (  # noqa: F401
    CONV_LAYERS,
    FeatureExtractor,
    build_extractor,
    random_extractor,
)
from vidstyle.features.weights import WeightsInfo, load_weights  # noqa: F401

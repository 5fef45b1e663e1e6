"""Offline metrics for generated digits, read by classifiers the project trains and ships itself.

No weights are ever downloaded: :mod:`.train_classifier` trains a digit
classifier and a digit-style classifier on MNIST, and their weights ship
inside the package (safetensors + JSON).

Public names
------------
frechet_distance, frechet_distance_gaussians, classifier_features
    Fréchet distance (FD) in the digit classifier's 64-d feature space (:mod:`.scores`)
mode_coverage, conditional_accuracy, identity_kept, domain_reached, predict
    class spread, cGAN accuracy, translation checks (:mod:`.scores`)
load_digit_classifier, load_domain_classifier, load_classifier, DigitClassifier, ClassifierConfig
    the classifiers (:mod:`.classifier`)
"""

from .classifier import (
    WEIGHTS_DIR,
    ClassifierConfig,
    DigitClassifier,
    load_classifier,
    load_digit_classifier,
    load_domain_classifier,
    save_classifier,
)
from .scores import (
    classifier_features,
    conditional_accuracy,
    domain_reached,
    frechet_distance,
    frechet_distance_gaussians,
    identity_kept,
    mode_coverage,
    predict,
)

__all__ = [
    "WEIGHTS_DIR",
    "ClassifierConfig",
    "DigitClassifier",
    "classifier_features",
    "conditional_accuracy",
    "domain_reached",
    "frechet_distance",
    "frechet_distance_gaussians",
    "identity_kept",
    "load_classifier",
    "load_digit_classifier",
    "load_domain_classifier",
    "mode_coverage",
    "predict",
    "save_classifier",
]

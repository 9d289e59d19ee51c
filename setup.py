"""keras_si: scale-invariant architectures and robust SGD training for Keras 3.

Only the `keras_si` library is installed; `official/` (the BERT/SIBERT
pretraining pipeline) runs from a checkout, like the TF Model Garden, and is
deliberately not installed as a top-level `official` package (that name
belongs to tf-models-official).
"""

import pathlib
import re

from setuptools import find_packages, setup

here = pathlib.Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "keras_si" / "__init__.py").read_text()).group(1)

setup(
    name="keras-si",
    version=version,
    description=(
        "Scale-invariant architectures, SGDClip (Li et al., ICML 2022) and an SGD-family "
        "optimizer toolbox for Keras 3"
    ),
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["keras_si", "keras_si.*"]),
    python_requires=">=3.10",
    # Keras 3 runs on any one of TensorFlow, JAX or PyTorch, so none of them is
    # required: the user picks one with an extra (as KerasHub does) or brings
    # their own install. keras_si itself imports no backend at import time.
    install_requires=[
        "keras>=3.15,<3.16",
        "numpy",
    ],
    extras_require={
        "tensorflow": ["tensorflow>=2.21,<2.22"],
        # Ranges, not pins: users choose their CPU/GPU builds; the tested pins
        # (CPU wheels) are in requirements-jax.txt and requirements-torch.txt.
        "jax": ["jax>=0.10"],
        "torch": ["torch>=2.13"],
        # The pretraining pipeline in official/ (run from a checkout): TensorFlow only.
        "nlp": [
            "tensorflow>=2.21,<2.22",
            "tensorflow-text==2.21.1",  # 2.21.0 does not import
            "tensorflow-datasets>=4.9,<4.10",
            "importlib_resources",  # needed by tensorflow-datasets, not declared by it
            "absl-py",
            "tensorboard",  # summaries; tensorflow 2.21 no longer installs it
        ],
        "test": ["pytest"],
        # examples/: the digits comparison (data ships inside scikit-learn) and the plots.
        "examples": ["scikit-learn", "matplotlib"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

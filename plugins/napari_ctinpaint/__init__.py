"""napari plugin for ctinpaint: mark artifacts, train or load a model, inpaint, see the uncertainty.

Everything the plugin computes goes through the public ``ctinpaint`` functions the
``ctinpaint`` command uses; this package only gathers parameters and shows results.
Its contributions (reader, sample data, widget) are declared in ``napari.yaml``.
"""

__version__ = "0.1.0"

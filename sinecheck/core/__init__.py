"""The core: configs, presets, the sine data, results and comparisons.  Never imports TensorFlow."""

"""What every zoo model shares: construction from its config and presets."""

import keras


class ZooModel(keras.Model):
    """A functional `keras.Model` built from its constructor arguments.

    Subclasses build their graph in `__init__` (KerasHub style: Layers,
    Functional Model, Config) and return every constructor argument from
    `get_config`, so `from_config` is just `cls(**config)`.
    """

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name_or_path):
        """Load a shipped preset by name, or a preset folder by path.

        The weights' sha256 and the config's class are checked before
        anything is loaded; see `glu_zoo.presets`.
        """
        from glu_zoo.presets import registry

        return registry.load(name_or_path, expected_class=cls)

    def save_to_preset(self, path, metadata=None):
        """Write a preset folder: config.json, model.weights.h5, metadata.json."""
        from glu_zoo.presets import registry

        return registry.save(self, path, metadata=metadata)

"""Any folder of images, one sub-folder per class."""


def load_image_folder(directory, image_size, batch_size=64, validation_split=0.2, seed=0,
                      color_mode="rgb"):
    """(train, validation) `tf.data` datasets from `directory/<class>/<image>`,
    through `keras.utils.image_dataset_from_directory` (needs TensorFlow
    installed, whatever the backend). Pixels are float32 in [0, 255]."""
    import keras

    common = dict(
        image_size=tuple(image_size), batch_size=batch_size, seed=seed, color_mode=color_mode,
        validation_split=validation_split or None, label_mode="int",
    )
    if not validation_split:
        return keras.utils.image_dataset_from_directory(directory, **common), None
    return tuple(keras.utils.image_dataset_from_directory(directory, subset="both", **common))

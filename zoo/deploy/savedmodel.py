"""The SavedModel every export starts from: Keras 3's ExportArchive with a `serving_default`
signature. Its own module because the exporter, the pre-conversion check (zoo.deploy.compat) and
the int8 report (zoo.deploy.quantization) all convert from it, and the exporter imports those two."""

from __future__ import annotations

from pathlib import Path

# the export's SavedModel is saved_model/1/: TF Serving serves the highest numbered folder under
# its --model_base_path, and takes no SavedModel that is not in one
VERSION = "1"


def write(model, path: Path, *, batch: int | None = None) -> None:
    """A SavedModel with a `serving_default` signature; `batch` fixes the batch size."""
    from zoo.backend import keras

    import tensorflow as tf

    k = keras()
    spec = model.inputs[0]
    archive = k.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((batch, *spec.shape[1:]), dtype=spec.dtype, name="input")],
    )
    archive.write_out(str(path), verbose=False)
    # Keras names the endpoint "serve"; TF Serving and most tools look for serving_default
    loaded = tf.saved_model.load(str(path))
    tf.saved_model.save(loaded, str(path), signatures={"serving_default": loaded.serve})

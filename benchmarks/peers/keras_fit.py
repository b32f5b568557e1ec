"""The Keras peer: LeNet-5 trained by a plain `model.fit`, as keras.io's "Simple MNIST convnet"
shows (pixels / 255, Adam, categorical cross-entropy, batch 128), with Adam 1e-3 and TensorFlow as
it comes (no zoo switches: oneDNN is what TensorFlow decides on this CPU), until the test
accuracy first reaches the target. Output as pytorch_loop.py's.
"""

import time

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

from _mnist import load  # noqa: E402


def main(target: float, max_epochs: int, seed: int) -> None:
    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = load()
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"])

    class Score(keras.callbacks.Callback):
        scoring = 0.0

        def on_epoch_end(self, epoch, logs=None):
            end = time.monotonic()
            accuracy = float((self.model.predict(x_test, batch_size=1024, verbose=0).argmax(1) == y_test).mean())
            print(json.dumps({"epoch": epoch + 1, "clock": end, "scored_before": Score.scoring,
                              "accuracy": accuracy}), flush=True)
            Score.scoring += time.monotonic() - end
            if accuracy >= target:
                self.model.stop_training = True

    model.fit(x_train, y_train, batch_size=128, epochs=max_epochs, verbose=0, callbacks=[Score()])


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

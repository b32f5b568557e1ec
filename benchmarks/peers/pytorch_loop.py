"""The PyTorch peer: LeNet-5 trained by the eager loop of PyTorch's MNIST example
(github.com/pytorch/examples, mnist/main.py: Normalize((0.1307,), (0.3081,)), shuffled batches,
zero_grad / backward / step, a test pass after every epoch), with Adam 1e-3 and batch 128 as the
issue asks, until the test accuracy first reaches the target.

It prints one JSON line per epoch: the monotonic clock at the epoch's end (the parent started
the clock before it launched this process) with the seconds spent scoring the epochs before it, which
the parent takes out, and the test accuracy.
"""

import time

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from _mnist import load  # noqa: E402


def lenet5() -> nn.Module:
    """zoo's LeNet-5 (ReLU, max pooling, C1 with same padding): 61,706 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def main(target: float, max_epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = load()

    def tensor(x):  # ToTensor() then Normalize((0.1307,), (0.3081,))
        return (torch.from_numpy(x.astype(np.float32) / 255).unsqueeze(1) - 0.1307) / 0.3081

    xs, ys = tensor(x_train), torch.from_numpy(y_train.astype(np.int64))
    xt, yt = tensor(x_test), torch.from_numpy(y_test.astype(np.int64))
    model = lenet5()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scoring = 0.0
    for epoch in range(1, max_epochs + 1):
        model.train()
        for idx in torch.randperm(len(ys)).split(128):  # DataLoader(shuffle=True, batch_size=128)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
        end = time.monotonic()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xt).argmax(1) == yt).float().mean())
        print(json.dumps({"epoch": epoch, "clock": end, "scored_before": scoring, "accuracy": accuracy}), flush=True)
        scoring += time.monotonic() - end
        if accuracy >= target:
            break


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

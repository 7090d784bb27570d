"""Noisy linear layers (Fortunato et al. 2018, factorised Gaussian noise) for exploration by the weights.

In training mode a layer's weights are `mu + sigma * epsilon`, with epsilon redrawn by
`resample_noise`; in evaluation mode they are `mu` alone, so greedy evaluation is deterministic.
With factorised noise `epsilon = outer(eps_out, eps_in)`, `x @ (mu + sigma * epsilon).T =
x @ mu.T + ((x * eps_in) @ sigma.T) * eps_out`: a second matmul instead of building the `(out,
in)` noisy weight. That is cheaper only for a few rows (acting: 28 against 46 us for a 256x256
layer and one row, one CPU thread); for minibatches the second matmul, and its two in the
backward, cost more than building the weight (128 rows: 977 against 541 us forward and
backward), so `forward` builds the weight for those (`TWO_MATMULS_UP_TO` rows).
The noise comes from a generator the caller owns (`DQN` keeps one and saves its state in the
checkpoint, beside the noise buffers), not torch's global one: other code draws from that (a
DataLoader draws a seed when it starts iterating), which would shift the noise on resume.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor, nn

TWO_MATMULS_UP_TO = 4
"""Inputs of at most this many rows take the two-matmul form, larger ones the built weight."""


class NoisyLinear(nn.Module):
    """`nn.Linear` with learned, factorised Gaussian noise on its weights and bias.

    Args:
        in_features: as in `nn.Linear`.
        out_features: as in `nn.Linear`.
        sigma0: initial noise scale; each sigma starts at `sigma0 / sqrt(in_features)` (0.5 in the paper).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features, self.sigma0 = in_features, out_features, sigma0
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()
        # factorised noise: one draw per input and per output, (out, in) weight noise as their outer product
        self.eps_in: Tensor
        self.eps_out: Tensor
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))
        self.resample()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draws the means uniformly in +-1/sqrt(in_features) (torch's global generator) and sets each
        sigma to `sigma0 / sqrt(in_features)`, in place: at construction and for a reset."""
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight_mu.uniform_(-bound, bound)
        self.bias_mu.uniform_(-bound, bound)
        self.weight_sigma.fill_(self.sigma0 * bound)
        self.bias_sigma.fill_(self.sigma0 * bound)

    @torch.no_grad()
    def resample(self, generator: torch.Generator | None = None) -> None:
        """Draws fresh noise: `f(x) = sign(x) sqrt(|x|)` of standard normals, as in the paper.

        `generator` is a CPU generator (None: torch's global one); the draws are copied to the
        layer's device, so the same stream serves CPU and GPU runs.
        """
        _draw_into([self.eps_in, self.eps_out], generator)

    @property
    def weight(self) -> Tensor:
        """The weights in use: noisy in training mode, the mean in evaluation mode."""
        if not self.training:
            return self.weight_mu
        return torch.addcmul(self.weight_mu, self.weight_sigma, torch.outer(self.eps_out, self.eps_in))

    @property
    def bias(self) -> Tensor:
        return torch.addcmul(self.bias_mu, self.bias_sigma, self.eps_out) if self.training else self.bias_mu

    def forward(self, x: Tensor) -> Tensor:
        """`x @ weight.T + bias` for `(batch, in_features)` inputs, in the cheaper form for their rows."""
        if not self.training:
            return nn.functional.linear(x, self.weight_mu, self.bias_mu)
        if x.shape[0] > TWO_MATMULS_UP_TO:
            return nn.functional.linear(x, self.weight, self.bias)
        noise = nn.functional.linear(x * self.eps_in, self.weight_sigma) * self.eps_out
        return nn.functional.linear(x, self.weight_mu, self.bias) + noise

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def resample_noise(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Redraws the noise of every noisy layer in `module` (nothing for a network without any)."""
    layers = _noisy_layers.get(module)
    if layers is None:  # found once per network: walking the modules costs as much as the draw
        layers = _noisy_layers[module] = [layer for layer in module.modules() if isinstance(layer, NoisyLinear)]
    if layers:
        _draw_into([eps for layer in layers for eps in (layer.eps_in, layer.eps_out)], generator)


_noisy_layers: weakref.WeakKeyDictionary[nn.Module, list[NoisyLinear]] = weakref.WeakKeyDictionary()


@torch.no_grad()
def _draw_into(buffers: list[Tensor], generator: torch.Generator | None) -> None:
    """Fills `buffers` (one device, one dtype) with fresh `f(x)` noise drawn on the CPU generator.

    One draw of standard normals for all of them (`torch.randn(total)`, split in order: the
    first layer's `eps_in`, its `eps_out`, the next layer's...), `f` applied in place, then to a
    GPU in one copy from pinned memory that does not wait for the host: one transfer per update
    or env step instead of two per layer, each a sync from pageable memory.
    """
    device = buffers[0].device
    sizes = [eps.numel() for eps in buffers]
    # pinned: the copy below runs on the GPU's stream without a host sync; torch's pinned-memory
    # cache keeps the block until that copy is done, so a new draw cannot overwrite it early
    host = torch.empty(sum(sizes), pin_memory=device.type == "cuda").normal_(generator=generator)
    sign = host.sign()
    host.abs_().sqrt_().mul_(sign)  # in place: the result stays in the pinned block
    moved = host.to(device, non_blocking=True)
    for x, eps in zip(moved.split(sizes), buffers, strict=True):
        eps.copy_(x.view(eps.shape))


def has_noise(module: nn.Module) -> bool:
    return any(isinstance(layer, NoisyLinear) for layer in module.modules())

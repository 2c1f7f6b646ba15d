"""The DQN's Q-network: an MLP from observations to action values, with the Dueling head as an option."""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.layers import make_activation

__all__ = ["QNetwork"]


class QNetwork(nn.Module):
    """MLP from observations (B, D) to action values (B, A); dueling: Q = V + A - mean(A)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: list[int], activation: str, dueling: bool) -> None:
        super().__init__()
        layers, width = [], obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), make_activation(activation)]
            width = h
        self.body = nn.Sequential(*layers)  # (B, H)
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(width, 1)  # (B, 1) state value
            self.advantage = nn.Linear(width, num_actions)  # (B, A)
        else:
            self.head = nn.Linear(width, num_actions)

    def forward(self, obs: Tensor) -> Tensor:
        h = self.body(obs)
        if not self.dueling:
            return self.head(h)
        advantage = self.advantage(h)
        # Subtracting the mean advantage makes V and A identifiable (Wang et al., eq. 9).
        return self.value(h) + advantage - advantage.mean(dim=1, keepdim=True)

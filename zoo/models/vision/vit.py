"""Vision Transformer (Dosovitskiy et al., 2020, "An Image is Worth 16x16 Words"), sized for 28 and 32 px images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.features import FeatureStage
from zoo.core.image import ImageClassifier
from zoo.core.registry import register_model

__all__ = ["EncoderBlock", "PatchEmbedding", "VisionTransformer"]


class PatchEmbedding(nn.Module):
    """Cut the image into non-overlapping patch_size x patch_size patches and project each to ``dim``."""

    def __init__(self, in_channels: int, patch_size: int, dim: int) -> None:
        super().__init__()
        # A strided convolution is a linear map of each flattened patch.
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, N, D), N = (H/p)(W/p)


class Attention(nn.Module):
    """Multi-head self-attention over all tokens (no mask: every patch sees every patch)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        assert dim % heads == 0, f"dim ({dim}) must be a multiple of heads ({heads})"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape  # (B, N, D)
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, N, D/h)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))  # (B, N, D)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # (B, N, D)
        return x + self.mlp(self.norm2(x))


class VisionTransformer(ImageClassifier):
    """ViT: patch embedding, a class token, learned position embeddings, pre-norm encoder blocks, an MLP head.

    The head reads the final layer-normed class token (``forward_features``), through a linear layer
    (``head``); ``num_features`` is ``dim``.

    Args:
        patch_size: side of the square patches; must divide ``image_size``.
        dim: token width.
        depth: number of encoder blocks.
        heads: attention heads per block; must divide ``dim``.
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``dim``.
        **kwargs: ``ImageClassifier``'s ``in_channels``, ``image_size``, ``dropout`` (before the linear head),
            ``freeze_backbone``, normalization, then ``ClassifierModule``'s and ``ZooModule``'s arguments.
    """

    stem_conv = "patch_embed.proj"

    def __init__(
        self,
        *,
        patch_size: int = 4,
        dim: int = 96,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: float = 2.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if min(patch_size, dim, heads) < 1 or depth < 0:
            raise ValueError(f"patch_size, dim and heads must be >= 1 and depth >= 0, got {patch_size}, {dim}, {heads}, {depth}")
        if int(dim * mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio must give each block's MLP >= 1 unit (dim * mlp_ratio), got mlp_ratio={mlp_ratio} for dim={dim}")
        if self.image_size % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide image_size ({self.image_size})")
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        num_patches = (self.image_size // patch_size) ** 2
        self.patch_embed = PatchEmbedding(self.in_channels, patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)  # learned, one per token
        self.pos_drop = nn.Dropout(self.dropout)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_ratio, self.dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, self.num_outputs)

        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N+1, D): the class token, then the patches, with their position embeddings."""
        tokens = self.patch_embed(x)  # (B, N, D)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D)
        return self.pos_drop(torch.cat([cls, tokens], dim=1) + self.pos_embed)  # (B, N+1, D)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, dim), the final class token."""
        return self.forward_neck(self.blocks(self.embed(x)))

    def forward_neck(self, x: Tensor) -> Tensor:
        """(B, N+1, D), the last block's tokens -> (B, D), the layer-normed class token."""
        return self.norm(x)[:, 0]

    def feature_stages(self) -> list[FeatureStage]:
        """Each encoder block; the first embeds the patches before it (timm's feature_info: ``blocks.i``, stride patch_size)."""
        p, dim = self.patch_embed.proj.stride[0], self.norm.normalized_shape[0]
        first = ("patch_embed", "cls_token", "pos_embed", "blocks.0")
        return [
            FeatureStage(f"blocks.{i}", dim, p, first if i == 0 else (f"blocks.{i}",), (lambda x, b=block: b(self.embed(x))) if i == 0 else block)
            for i, block in enumerate(self.blocks)
        ]

    def feature_map(self, x: Tensor, *, norm: bool = False) -> Tensor:
        """A block's tokens (B, N+1, D) -> (B, D, H/p, W/p): the patches' tokens as a map (the final norm first with ``norm``)."""
        x = self.norm(x) if norm else x
        side = self.image_size // self.patch_embed.proj.stride[0]
        return x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, side, side)  # class token dropped


@register_model("vit_tiny")
def vit_tiny(**kwargs) -> VisionTransformer:
    """ViT for 28 and 32 px images: 4x4 patches, width 96, 6 blocks, 3 heads (0.5 M parameters)."""
    return VisionTransformer(**{"patch_size": 4, "dim": 96, "depth": 6, "heads": 3, "mlp_ratio": 2.0, **kwargs})


@register_model("vit_small")
def vit_small(**kwargs) -> VisionTransformer:
    """ViT for 28 and 32 px images: 4x4 patches, width 192, 8 blocks, 6 heads (2.4 M parameters)."""
    return VisionTransformer(**{"patch_size": 4, "dim": 192, "depth": 8, "heads": 6, "mlp_ratio": 2.0, **kwargs})

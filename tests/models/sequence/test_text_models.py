"""Text models on edge-case inputs: empty texts (rows of padding only)."""

import torch

import zoo
from zoo.core.tokenizer import PAD_ID


def test_transformer_classifier_gives_finite_logits_for_an_empty_text():
    torch.manual_seed(0)
    model = zoo.TransformerClassifier(vocab_size=20, d_model=16, nhead=2, num_layers=2, dim_feedforward=32, num_classes=3)
    x = torch.tensor([[5, 6, 7, PAD_ID], [PAD_ID] * 4, [8, PAD_ID, PAD_ID, PAD_ID]])  # row 1: an empty review
    model.eval()
    with torch.no_grad():
        logits = model(x)
        assert torch.isfinite(logits).all()
        assert torch.allclose(logits[1], model.head.bias)  # no token: zero features, the head's prior
        assert torch.equal(model(x[[0, 2]]), logits[[0, 2]])  # other rows are untouched by the empty one
        assert torch.allclose(model(x[[1], :2]), logits[[1]])  # and its length does not matter
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2]))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

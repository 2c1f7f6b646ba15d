"""Sequence models: recurrent classifier, LSTM forecaster, Seq2Seq, Transformer, BERT, and the decoding they share."""

from zoo.models.sequence.bert import BertClassifier, BertForMaskedLM
from zoo.models.sequence.forecaster import LSTMForecaster
from zoo.models.sequence.rnn import RecurrentClassifier
from zoo.models.sequence.seq2seq import Seq2Seq
from zoo.models.sequence.transformer import Transformer, TransformerClassifier

__all__ = ["BertClassifier", "BertForMaskedLM", "LSTMForecaster", "RecurrentClassifier", "Seq2Seq", "Transformer", "TransformerClassifier"]

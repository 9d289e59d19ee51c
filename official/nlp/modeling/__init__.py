"""BERT and SIBERT models for pretraining, built from keras_si.layers."""

from official.nlp.modeling.bert import BertEncoder, BertTransformerBlock
from official.nlp.modeling.configs import PRESETS, EncoderConfig, get_config
from official.nlp.modeling.heads import MaskedLMHead, NextSentenceHead
from official.nlp.modeling.pretrainer import (FEATURES, MODELS, TARGET_FEATURES, Pretrainer, dummy_features,
                                             pretraining_targets, scale_initialization)
from official.nlp.modeling.sibert import SIBertEncoder

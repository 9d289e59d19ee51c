"""SIEmbeddings (keras_si/layers/embedding.py): degree 2, unit axes."""

import numpy as np

import keras_si
from keras_si import layers as L
from tests.keras_si.layers.homogeneity import DEGREE_TOL, measured_degree


def test_embeddings_degree_2():
    ids = np.random.RandomState(3).randint(0, 30, size=(2, 6)).astype("int32")
    emb = L.SIEmbeddings(30, 8, max_sequence_length=10)
    emb(ids, np.zeros_like(ids))
    degree, _, _ = measured_degree(lambda a, b: emb(a, b), emb.trainable_variables, lambda s: (ids, np.zeros_like(ids)), 0)
    assert abs(degree - 2) < DEGREE_TOL


def test_the_position_table_states_its_per_unit_axes():
    """A row per position, as Keras's Embedding: one unit for AGC and SGDP/AdamP's channel view."""
    embeddings = keras_si.layers.SIEmbeddings(vocab_size=10, hidden_dim=8, max_sequence_length=6)
    embeddings(np.zeros((1, 3), "int32"))
    assert keras_si.optimizers.unit_axes(embeddings.position_embeddings) == (0,)

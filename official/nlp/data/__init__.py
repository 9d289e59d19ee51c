"""Text -> WordPiece vocabulary -> TFRecords (or dynamic masking) -> tf.data for pretraining."""

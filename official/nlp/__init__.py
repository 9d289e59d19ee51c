"""BERT and SIBERT: models, data and entry points (pretrain, export, finetune)."""
